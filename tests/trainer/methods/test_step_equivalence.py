"""The training steps give the reference implementations' numbers: each method's ``train_step``
against the same update written plainly in the reference's order (junyanz's CycleGANModel and
Pix2PixModel, yunjey/stargan's Solver.train), from the same weights and seed, in float32. The
steps' shortcuts (one pass over two batches where the nets treat each image on its own, a fake
reused while its generator is unchanged, no graph for a fake only D sees) must leave the losses,
the weights and the running statistics as the plain update does, up to float rounding."""
import copy

import pytest
import torch
import torch.nn.functional as F

from trainer import registry
from trainer.image_pool import ImagePool
from trainer.registry import get_method

STEPS = 3  # more, and Adam's first steps (about lr on every weight, whatever its gradient's size) let
# rounding noise in a gradient that is nearly 0 decide a sign: the plain update written twice in two
# orders drifts apart by ~1e-3 from the fourth step on


def make(preset, overrides):
    cfg = registry.load_config(preset, ["data.root=.", "train.precision='off'", "train.device='cpu'",
                                        "train.steps=100", "train.decay_steps=50", *overrides])
    torch.manual_seed(0)
    return cfg, get_method(cfg.method)(cfg, torch.device("cpu"))


def images(n, size, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


def plain_adam(params, t):
    return torch.optim.Adam(params, lr=t.lr, betas=(t.beta1, t.beta2), foreach=False)


def assert_close(ours: dict, plain: dict, what: str, atol: float = 0.0, rtol: float = 1e-4):
    for k, v in plain.items():
        torch.testing.assert_close(ours[k].detach().float(), v.detach().float(), atol=atol, rtol=rtol,
                                   msg=lambda m: f"{what} {k}: {m}")


def assert_same_nets(method, plain_nets: dict, lr: float, steps: int = STEPS):
    """Weights and buffers within what a few Adam steps on gradients that are pure rounding noise
    can move them: a bias before an instance norm, or a convolution's part that only shifts the
    channel means a norm then removes, has a true gradient of 0, and Adam normalises the noise to
    steps of about lr (the running means of the norm after it move with it)."""
    for name, net in plain_nets.items():
        ours = method.nets[name]
        for (k, a), b in zip(ours.named_parameters(), net.parameters()):
            torch.testing.assert_close(a, b, atol=2 * lr * steps, rtol=1e-3, msg=lambda m: f"{name}.{k}: {m}")
        for (k, a), b in zip(ours.named_buffers(), net.buffers()):
            torch.testing.assert_close(a, b, atol=2 * lr * steps, rtol=1e-3, msg=lambda m: f"{name}.{k}: {m}")


@pytest.mark.parametrize("identity", [0.5, 0.0])
def test_cyclegan_step_is_junyanz_update(identity):
    cfg, method = make("cyclegan-horse2zebra", ["data.image_size=32", "model.ngf=8", "model.ndf=8",
                                                "model.n_blocks=2", f"model.lambda_identity={identity}",
                                                "model.pool_size=2"])
    m, t = cfg.model, cfg.train
    nets = {k: copy.deepcopy(v) for k, v in method.nets.items()}
    G_A, G_B, D_A, D_B = (nets[k] for k in ("G_A", "G_B", "D_A", "D_B"))
    opt_G = plain_adam([*G_A.parameters(), *G_B.parameters()], t)
    opt_D = plain_adam([*D_A.parameters(), *D_B.parameters()], t)
    pools = {"A": ImagePool(m.pool_size, seed=t.seed), "B": ImagePool(m.pool_size, seed=t.seed + 1)}
    lsgan = lambda p, real: F.mse_loss(p, torch.full_like(p, float(real)))  # noqa: E731
    for step in range(STEPS):
        A, B = images(1, 32, 2 * step), images(1, 32, 2 * step + 1)
        ours = method.train_step({"A": A, "B": B})
        # optimize_parameters: forward, G with the Ds frozen, then both Ds on pooled fakes
        fake_B, fake_A = G_A(A), G_B(B)
        rec_A, rec_B = G_B(fake_B), G_A(fake_A)
        for p in [*D_A.parameters(), *D_B.parameters()]:
            p.requires_grad_(False)
        plain = {}
        if identity:
            plain["idt_A"] = F.l1_loss(G_A(B), B) * m.lambda_B * identity
            plain["idt_B"] = F.l1_loss(G_B(A), A) * m.lambda_A * identity
        plain["G_A"], plain["G_B"] = lsgan(D_A(fake_B), True), lsgan(D_B(fake_A), True)
        plain["cycle_A"] = F.l1_loss(rec_A, A) * m.lambda_A
        plain["cycle_B"] = F.l1_loss(rec_B, B) * m.lambda_B
        opt_G.zero_grad()
        sum(plain.values()).backward()
        opt_G.step()
        for p in [*D_A.parameters(), *D_B.parameters()]:
            p.requires_grad_(True)
        opt_D.zero_grad()
        for name, D, real, fake, pool in (("D_A", D_A, B, fake_B, "B"), ("D_B", D_B, A, fake_A, "A")):
            fake = pools[pool].query(fake)
            plain[name] = (lsgan(D(real), True) + lsgan(D(fake.detach()), False)) * 0.5
            plain[name].backward()
        opt_D.step()
        assert set(ours) == set(plain)
        assert_close(ours, plain, f"step {step}")
    assert_same_nets(method, nets, t.lr)


@pytest.mark.parametrize("plain_passes", [False, True])  # True: the bench's re-creation, without the shortcuts
def test_stargan_step_is_yunjey_update(plain_passes):
    cfg, method = make("stargan-celeba", ["data.image_size=32", "train.batch_size=4", "model.g_conv_dim=8",
                                          "model.d_conv_dim=8", "model.g_repeat_num=2", "model.d_repeat_num=4",
                                          "model.n_critic=2"])
    method.plain_passes = plain_passes
    m, t = cfg.model, cfg.train
    G, D = copy.deepcopy(method.nets["G"]), copy.deepcopy(method.nets["D"])
    opt_G, opt_D = plain_adam(G.parameters(), t), plain_adam(D.parameters(), t)
    n = t.batch_size
    g = torch.Generator().manual_seed(1)
    steps = 2 * m.n_critic  # two G steps, each on the fake of its iteration's D step
    labels = [(torch.rand(n, len(m.selected_attrs), generator=g) > 0.5).float() for _ in range(steps)]
    batches = [{"image": images(n, 32, step), "label": labels[step]} for step in range(steps)]

    def cls_loss(logits, target):
        return F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / logits.size(0)

    torch.manual_seed(5)
    ours = [method.train_step(b) for b in batches]
    torch.manual_seed(5)
    for i, b in enumerate(batches):
        x_real, label_org = b["image"], b["label"]
        rand_idx = torch.randperm(n)
        label_trg = label_org[rand_idx]
        plain = {}
        out_src, out_cls = D(x_real)
        plain["D_real"], plain["D_cls"] = -out_src.mean(), cls_loss(out_cls, label_org)
        x_fake = G(x_real, label_trg)
        out_src, _ = D(x_fake.detach())
        plain["D_fake"] = out_src.mean()
        alpha = torch.rand(n, 1, 1, 1)
        x_hat = (alpha * x_real.data + (1 - alpha) * x_fake.data).requires_grad_(True)
        out_src, _ = D(x_hat)
        dydx = torch.autograd.grad(out_src, x_hat, torch.ones_like(out_src), create_graph=True)[0]
        plain["D_gp"] = m.lambda_gp * ((dydx.view(n, -1).pow(2).sum(1).sqrt() - 1) ** 2).mean()
        opt_D.zero_grad(), opt_G.zero_grad()
        (plain["D_real"] + plain["D_fake"] + m.lambda_cls * plain["D_cls"] + plain["D_gp"]).backward()
        opt_D.step()
        if (i + 1) % m.n_critic == 0:
            x_fake = G(x_real, label_trg)
            out_src, out_cls = D(x_fake)
            plain["G_fake"], plain["G_cls"] = -out_src.mean(), cls_loss(out_cls, label_trg)
            plain["G_rec"] = (x_real - G(x_fake, label_org)).abs().mean()
            opt_D.zero_grad(), opt_G.zero_grad()
            (plain["G_fake"] + m.lambda_rec * plain["G_rec"] + m.lambda_cls * plain["G_cls"]).backward()
            opt_G.step()
        assert set(ours[i]) == set(plain)
        assert_close(ours[i], plain, f"step {i}")
    assert_same_nets(method, {"G": G, "D": D}, t.lr, steps)


def test_pix2pix_step_is_junyanz_update():
    cfg, method = make("pix2pix-facades", ["data.image_size=32", "model.ngf=8", "model.ndf=8", "train.batch_size=1"])
    m, t = cfg.model, cfg.train
    G, D = copy.deepcopy(method.nets["G"]), copy.deepcopy(method.nets["D"])
    opt_G, opt_D = plain_adam(G.parameters(), t), plain_adam(D.parameters(), t)
    bce = lambda p, real: F.binary_cross_entropy_with_logits(p, torch.full_like(p, float(real)))  # noqa: E731
    batches = [{"A": images(1, 32, 2 * step), "B": images(1, 32, 2 * step + 1)} for step in range(STEPS)]
    torch.manual_seed(7)  # the same dropout draws on both sides
    ours = [method.train_step(b) for b in batches]
    torch.manual_seed(7)
    for step, b in enumerate(batches):
        A, B = b["A"], b["B"]
        fake_B = G(A)  # optimize_parameters: forward, D on the detached fake and the real pair, then G
        plain = {"D_fake": bce(D(torch.cat([A, fake_B], 1).detach()), False), "D_real": bce(D(torch.cat([A, B], 1)), True)}
        opt_D.zero_grad()
        ((plain["D_fake"] + plain["D_real"]) * 0.5).backward()
        opt_D.step()
        for p in D.parameters():
            p.requires_grad_(False)
        plain["G_GAN"], plain["G_L1"] = bce(D(torch.cat([A, fake_B], 1)), True), F.l1_loss(fake_B, B)
        opt_G.zero_grad()
        (plain["G_GAN"] + m.lambda_l1 * plain["G_L1"]).backward()
        opt_G.step()
        for p in D.parameters():
            p.requires_grad_(True)
        assert set(ours[step]) == set(plain)
        assert_close(ours[step], plain, f"step {step}")
    assert_same_nets(method, {"G": G, "D": D}, t.lr)
