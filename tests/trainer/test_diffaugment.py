"""DiffAugment's policies: shapes, what moves, gradients, and the config check."""
import pytest
import torch

from trainer.diffaugment import NOISE, cutout, diff_augment, noise, parse_policy, translation


def test_policies_are_parsed_and_unknown_ones_named():
    assert parse_policy("") == () and parse_policy("translation, cutout") == ("translation", "cutout")
    with pytest.raises(ValueError, match="colour.*known: translation, cutout, noise"):
        parse_policy("translation,colour")


def test_empty_policy_is_the_identity():
    x = torch.randn(2, 3, 8, 8)
    assert diff_augment(x, ()) is x


def shifted(img, dy, dx):
    out = torch.zeros_like(img)
    h, w = img.shape[-2:]
    for y in range(h):
        for x in range(w):
            if 0 <= y + dy < h and 0 <= x + dx < w:
                out[..., y, x] = img[..., y + dy, x + dx]
    return out


def test_translation_shifts_whole_images_and_fills_with_zeros():
    torch.manual_seed(0)
    x = torch.arange(1, 65, dtype=torch.float32).view(1, 1, 8, 8).repeat(16, 3, 1, 1)
    y = translation(x, ratio=0.25)
    assert y.shape == x.shape
    moves = [next((dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                  if torch.equal(img, shifted(x[0], dy, dx))) for img in y]  # StopIteration: not a shift
    assert len(set(moves)) > 1


def test_cutout_zeroes_one_patch_and_gradients_flow():
    torch.manual_seed(1)
    x = torch.ones(4, 3, 16, 16, requires_grad=True)
    y = cutout(x, ratio=0.25)
    zeros = (y[:, 0] == 0).flatten(1).sum(1)
    assert ((zeros > 0) & (zeros <= 16)).all()  # a 4x4 patch, clipped at the border
    assert torch.equal(y[:, 0] == 0, y[:, 2] == 0)  # the same patch in every channel
    y.sum().backward()
    assert torch.equal(x.grad, (y.detach() != 0).float())


def test_stargan_config_refuses_an_unknown_policy():
    from trainer.errors import ConfigError
    from trainer.registry import load_config
    with pytest.raises(ConfigError, match="model.diffaugment"):
        load_config("stargan-faces", ["model.diffaugment='colour'"])


def test_noise_adds_instance_noise_of_its_std_and_passes_gradients_unchanged():
    torch.manual_seed(0)
    x = torch.zeros(4, 3, 32, 32, requires_grad=True)
    y = noise(x)
    assert abs(y.std().item() - NOISE) < 0.01 and abs(y.mean().item()) < 0.01
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))
    assert parse_policy("translation,noise") == ("translation", "noise")
    assert not torch.equal(diff_augment(x.detach(), ("noise",)), diff_augment(x.detach(), ("noise",)))
