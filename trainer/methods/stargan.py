"""StarGAN (Choi et al., "StarGAN: Unified Generative Adversarial Networks for Multi-Domain
Image-to-Image Translation", 2018), as yunjey/stargan trains it.

One generator G(x, c) for every target domain vector c; the discriminator's source head is
trained with WGAN-GP and its classification head with binary cross-entropy on the real
labels; G gets the adversarial loss, the classification loss of its outputs on the target
labels and the reconstruction loss |G(G(x, c_trg), c_org) - x| (lambda_rec 10), once every
n_critic steps. Targets are the batch's own labels shuffled, so exclusive attributes (hair
colours) stay exclusive. With ``second_root`` (a class-per-folder dataset such as RaFD) both
datasets train one model: the label is [attributes, classes, mask], and each half of the
step classifies only its own part (the mask vector of the paper).

Data: the attributes layout (CelebA: images and ``list_attr_celeba.txt``, :mod:`trainer.data.attributes`);
``data.image_size`` a multiple of 4 and at least 2 ** ``d_repeat_num``. Reference checkpoints:
yunjey/stargan generators, in and out.
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from trainer.controls import Control
from trainer.diffaugment import diff_augment, parse_policy
from trainer.data.attributes import DEFAULT_ATTRS, HAIR_COLOURS, AttributeDataset
from trainer.data.folder import FolderDataset, class_names
from trainer.data.synth import cached_dataset
from trainer.errors import ConfigError
from trainer.evaluation import attributes
from trainer.exporters import stargan as yunjey_export
from trainer.exporters.onnx_graphs import image_graph, per_image_norm, swap_modules
from trainer.images import image_grid
from trainer.importers import ImportKind
from trainer.importers import stargan as yunjey_import
from trainer.losses import gan_loss, gradient_penalty, l1_loss, total_variation_loss
from trainer.methods.base import (DISCRIMINATOR, GENERATOR, REGULARISATION, Method, set_requires_grad,
                                  side_effect_free)
from trainer.nets import build
from trainer.nets.init import init_weights
from trainer.translator import Translator, build_net, resolution_control


@dataclass
class StarGANConfig:
    """StarGAN's ``[model]`` settings: generator and discriminator widths and depths, the domains
    (``selected_attrs``), CelebA's centre crop, a second class-folder dataset, the loss weights and
    ``n_critic`` (discriminator steps per generator step), and GANimation's additions (off by default)."""
    g_conv_dim: int = 64
    d_conv_dim: int = 64
    g_repeat_num: int = 6
    d_repeat_num: int = 6
    selected_attrs: list = field(default_factory=lambda: list(DEFAULT_ATTRS))
    crop_size: int = 0  # 178 for CelebA's 178x218 images
    second_root: str = ""  # a class-per-folder dataset trained jointly through the mask vector
    second_synth: str = ""  # or a procedural one (expressions), made once like data.synth
    gan_mode: str = "wgangp"
    lambda_cls: float = 1.0
    lambda_rec: float = 10.0
    lambda_gp: float = 10.0
    n_critic: int = 5
    init_type: str = "none"  # the reference keeps PyTorch's default initialisation
    # Additions to the paper's losses, all off by default (the reference's behaviour):
    attention: bool = False  # GANimation's attention mask: output = A * x + (1 - A) * C
    lambda_mask: float = 0.0  # GANimation: mean(A) on the edit, so the mask cannot saturate to "keep all"
    lambda_tv: float = 0.0  # GANimation: total variation of A (here its L1 form), a smooth mask
    lambda_id: float = 0.0  # identity: |G(x, c_org) - x|, an edit to the labels x has changes nothing
    diffaugment: str = ""  # "translation,cutout": DiffAugment on every D input (trainer.diffaugment)


def exclusive_groups(attrs: list[str]) -> list[list[str]]:
    """The groups of ``attrs`` that are one category, at most one on at a time: the hair colours
    (when two or more are selected)."""
    hair = [a for a in attrs if a in HAIR_COLOURS]
    return [hair] if len(hair) > 1 else []


def single_domain_targets(c_org: torch.Tensor, attrs: list[str]) -> list[torch.Tensor]:
    """For each selected attribute, the labels with that one domain changed: a hair colour is
    set (and the other colours cleared), any other attribute is flipped (the reference's
    ``create_labels``)."""
    hair = [i for i, a in enumerate(attrs) if a in HAIR_COLOURS]
    out = []
    for i, a in enumerate(attrs):
        c = c_org.clone()
        if i in hair:
            c[:, hair] = 0
            c[:, i] = 1
        else:
            c[:, i] = 1 - c[:, i]
        out.append(c)
    return out


class JointDataset(Dataset):
    """An attributes dataset and a class-folder dataset read together: item i of the first with
    an item of the second drawn from the same seed."""

    def __init__(self, first, second):
        self.first, self.second = first, second

    def __len__(self):
        return len(self.first)

    def __getitem__(self, key):
        index, seed = key if isinstance(key, tuple) else (key, None)
        item = dict(self.first[key])
        j = index % len(self.second) if seed is None else seed % len(self.second)
        other = self.second[(j, seed)]
        item.update(image2=other["image"], class2=other["class_index"])
        return item


class StarGraph(nn.Module):
    """ONNX: ``image`` and the target vector ``c`` (N, label size) -> the edited image."""

    def __init__(self, G):
        super().__init__()
        self.G = G

    def forward(self, image, c):
        return self.G(image, c).clamp(-1, 1)


class StarTranslator(Translator):
    """StarGAN: one checkbox per domain (hair colours exclusive: like radio buttons that may all be
    off), and for a model trained jointly with a class-folder dataset, a class choice. The
    generator stays in training mode (instance statistics), without touching its running ones.
    ``resolution``: native (default) runs on the whole image at its own size, padded to a multiple
    of 4; training does what training did, the centre square (the shorter side's) resized to the
    model's size, and pastes the edited square back at that size into the unchanged image."""

    reduced_precision = True  # bf16: within 2/255 of fp32 on the bundled faces-attributes (docs/performance.md)
    full_precision_layers = (0, 1)  # the first two convolutions (instance statistics of a near-flat image)

    def __init__(self, card, tensors, device="cpu"):
        super().__init__(card, tensors, device)
        self.G = build_net(card, tensors, "G", self.device).train()
        for m in self.G.modules():
            if isinstance(m, nn.InstanceNorm2d):
                m.momentum = 0.0  # instance statistics, running ones left as trained
        self.domains = list(card.get("domains", []))
        self.classes = list(card.get("classes", []))
        groups = card.get("exclusive_groups", [])
        group_of = {d: f"group{i}" for i, g in enumerate(groups) for d in g}
        self.controls = [Control(d, "bool", False, d.replace("_", " "), f"Target domain {d}",
                                 group=group_of.get(d, "")) for d in self.domains]
        if self.classes:
            self.controls.append(Control("target_class", "choice", "", "Class",
                                         "A class of the second dataset (empty: use the attributes)",
                                         choices=["", *self.classes]))
        self.controls.append(resolution_control(card))
        self.multiple = self.G.size_multiple

    def check_controls(self, controls):
        values = super().check_controls(controls)
        for c in self.controls:
            if c.group and values[c.name]:
                others = [o.name for o in self.controls if o.group == c.group and o.name != c.name and values[o.name]]
                if others:
                    raise ValueError(f"{c.name} and {', '.join(others)} are mutually exclusive")
        return values

    def label(self, values) -> torch.Tensor:
        attrs = torch.tensor([[float(values[d]) for d in self.domains]], device=self.device)
        if not self.classes:
            return attrs
        cls = values.get("target_class", "")
        onehot = torch.zeros(1, len(self.classes), device=self.device)
        mask = torch.tensor([[0.0, 1.0] if cls else [1.0, 0.0]], device=self.device)
        if cls:
            onehot[0, self.classes.index(cls)] = 1
            attrs = torch.zeros_like(attrs)
        return torch.cat([attrs, onehot, mask], 1)

    def forward_array(self, image, resolution="native", **values):
        c = self.label(values)
        if resolution == "native":
            return self.through(image, lambda x: self.G(x, c), native=True)
        side = min(image.size)  # the centre square, as StarGAN's training crops (CelebA: 178 of 178x218)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        edited = self.through(image.crop((left, top, left + side, top + side)), lambda x: self.G(x, c))
        if image.size == (side, side):
            return edited
        out = np.array(image.convert("RGB"))
        out[top:top + side, left:left + side] = edited
        return out

    tensor_args = ("c",)

    def forward_tensor(self, x, tensors, resolution="native", **values):
        """``c`` (N, label size): the generator's target vector itself, instead of the controls."""
        self.check_size(x, 4)
        label, c = self.label(values), tensors.get("c")
        c = label.expand(x.shape[0], -1) if c is None else self.latent_batch(c, label.shape[1], "c", x.shape[0])
        return self.through_tensor(x, lambda t: self.G(t, c))

    def onnx_graphs(self, latent="z", mode=None, noise_mode="stored", noise_seed=0):
        """One graph ``image``, ``c`` -> ``output`` with per-image instance statistics; H and W
        multiples of 4."""
        G = swap_modules(copy.deepcopy(self.G), lambda m: isinstance(m, nn.InstanceNorm2d), per_image_norm).eval()
        label = self.label(self.defaults())
        layout = ", ".join(self.domains) + (f", one-hot of {', '.join(self.classes)}, mask [attributes, class]"
                                            if self.classes else "")
        c = torch.zeros(2, label.shape[1])
        return [image_graph("", StarGraph(G), 3, 4, self.image_size,
                            {"c": f"(N, {label.shape[1]}) target vector: {layout}"}, (c,), ("c",), {"c": {0: 1}})]


def _import_yunjey(state, path, **options):
    return yunjey_import.import_generator(state, path, default_groups=exclusive_groups, **options)


def _plan_yunjey(tensors: dict, card: dict, out):
    return yunjey_export.plan(tensors, card, out, import_kind="stargan")


class StarGAN(Method):
    name = "stargan"
    task = "attributes"
    paper = ('Choi, Choi, Kim, Ha, Kim, Choo: "StarGAN: Unified Generative Adversarial Networks for '
             'Multi-Domain Image-to-Image Translation", CVPR 2018')
    ModelConfig = StarGANConfig
    Translator = StarTranslator
    layouts = frozenset({"attributes"})
    loss_groups = {f"{key}{suffix}": group for suffix in ("", "_2") for key, group in (
        ("D_real", DISCRIMINATOR), ("D_fake", DISCRIMINATOR), ("D_cls", DISCRIMINATOR), ("D_gp", REGULARISATION),
        ("G_fake", GENERATOR), ("G_cls", REGULARISATION), ("G_rec", REGULARISATION), ("G_mask", REGULARISATION),
        ("G_tv", REGULARISATION), ("G_id", REGULARISATION))}
    import_kinds = {"stargan": ImportKind(
        _import_yunjey, "yunjey/stargan generator (200000-G.ckpt)",
        options=frozenset({"domains", "exclusive", "image_size"}), detect=yunjey_import.is_generator,
        signature="a StarGAN generator (main.0.weight)")}
    export_formats = {"stargan": _plan_yunjey}

    @classmethod
    def check_image_size(cls, size, model=None):
        """At least 2 ** ``model.d_repeat_num`` (the discriminator's downsamplings) and a multiple of 4."""
        model = model or cls.ModelConfig()
        if size < 2 ** model.d_repeat_num:
            raise ConfigError(f"data.image_size {size} is smaller than 2^d_repeat_num "
                              f"({2 ** model.d_repeat_num}); lower model.d_repeat_num")
        if size % 4:
            raise ConfigError(f"data.image_size = {size}: must be a multiple of 4")

    @classmethod
    def validate(cls, cfg):
        cls.check_common(cfg, "attributes layout (an image folder and list_attr_celeba.txt)", "/path/to/celeba")
        m = cfg.model
        cls.check_image_size(cfg.data.image_size, m)
        if m.n_critic < 1:
            raise ConfigError("model.n_critic must be at least 1")
        try:
            parse_policy(m.diffaugment)
        except ValueError as e:
            raise ConfigError(f"model.diffaugment: {e}") from None
        if (m.lambda_mask or m.lambda_tv) and not m.attention:
            raise ConfigError("model.lambda_mask and model.lambda_tv weigh the attention mask: set model.attention = true")
        if m.second_root and not Path(m.second_root).expanduser().is_dir():
            raise ConfigError(f"model.second_root = {m.second_root!r}: no such folder")

    @classmethod
    def evaluate(cls, translator, data=None, n=None, progress=True, **options):
        """:func:`trainer.evaluation.attributes.evaluate`: each single-domain edit against its
        counterfactual ground truth (accuracy, L1, what stays untouched, identity)."""
        return attributes.evaluate(translator, data=data, n=n, progress=progress, **options)

    def __init__(self, cfg, device, amp_dtype=None, channels_last=False, any_rank=None):
        super().__init__(cfg, device, amp_dtype, channels_last, any_rank)
        m, t = cfg.model, cfg.train
        self.attrs = list(m.selected_attrs)
        self.second_root = (Path(m.second_root).expanduser() if m.second_root else
                            cached_dataset(m.second_synth, cfg.data.synth_n, cfg.data.image_size) if m.second_synth
                            else None)
        self.classes2 = class_names(self.second_root) if self.second_root else []
        self.c_dim, self.c2_dim = len(self.attrs), len(self.classes2)
        self.label_dim = self.c_dim + (self.c2_dim + 2 if self.c2_dim else 0)
        g = build("stargan_G", **self.generator_args())
        d = build("stargan_D", image_size=cfg.data.image_size, conv_dim=m.d_conv_dim,
                  c_dim=self.c_dim + self.c2_dim, repeat_num=m.d_repeat_num)
        if m.init_type != "none":
            init_weights(g, m.init_type)
            init_weights(d, m.init_type)
        self.G, self.D = self.add_net("G", g), self.add_net("D", d)
        self.add_optimizer("G", self.G.parameters(), t.lr, (t.beta1, t.beta2))
        self.add_optimizer("D", self.D.parameters(), t.lr, (t.beta1, t.beta2))

    def generator_args(self) -> dict:
        m = self.cfg.model
        args = {"conv_dim": m.g_conv_dim, "c_dim": self.label_dim, "repeat_num": m.g_repeat_num}
        return {**args, "attention": True} if m.attention else args

    def dataset(self, phase="train", log=print):
        d, m = self.cfg.data, self.cfg.model
        root = self.data_root(log)
        first = AttributeDataset(root, "", self.attrs, phase, d.image_size, m.crop_size, d.flip, log=log)
        if not self.c2_dim:
            return first
        return JointDataset(first, FolderDataset(self.second_root, phase, d.image_size, m.crop_size, d.flip, log=log))

    # -- labels with the mask vector
    def full_label(self, attrs=None, classes=None, batch=1) -> torch.Tensor:
        """[attributes, one-hot classes, mask] (mask only when two datasets are joined)."""
        dev = self.device
        batch = attrs.size(0) if attrs is not None else batch
        parts = [attrs if attrs is not None else torch.zeros(batch, self.c_dim, device=dev)]
        if self.c2_dim:
            parts.append(F.one_hot(classes, self.c2_dim).float() if classes is not None
                         else torch.zeros(batch, self.c2_dim, device=dev))
            mask = torch.zeros(batch, 2, device=dev)
            mask[:, 0 if classes is None else 1] = 1
            parts.append(mask)
        return torch.cat(parts, 1)

    def _cls_loss(self, logits, target_attrs=None, target_classes=None):
        if target_classes is None:
            return F.binary_cross_entropy_with_logits(logits[:, :self.c_dim].float(), target_attrs,
                                                      reduction="sum") / logits.size(0)
        return F.cross_entropy(logits[:, self.c_dim:].float(), target_classes)

    def _running_norms(self) -> list[nn.Module]:
        return [mod for mod in self.G.modules() if isinstance(mod, nn.modules.instancenorm._InstanceNorm)
                and mod.track_running_stats]

    def _can_reuse_fake(self) -> bool:
        """Whether G's D-step fake may serve its loss: every running statistic of G then takes the
        second update the reference's second forward gives it (a momentum, not a cumulative mean)."""
        return all(mod.momentum is not None for mod in self._running_norms())

    def _norm_stats(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(mod.running_mean.clone(), mod.running_var.clone()) for mod in self._running_norms()]

    def _repeat_norm_update(self, before) -> None:
        """The running statistics as a second forward of the same batch would leave them: with
        r1 = (1 - m) r0 + m s, the second update is r2 = (1 - m) r1 + m s = r1 + (1 - m) (r1 - r0)."""
        with torch.no_grad():
            for mod, (mean0, var0) in zip(self._running_norms(), before):
                keep = 1.0 - mod.momentum
                mod.running_mean.add_(mod.running_mean - mean0, alpha=keep)
                mod.running_var.add_(mod.running_var - var0, alpha=keep)  # (instance norm counts no batches)

    # True: the step in yunjey's order with none of the shortcuts below (D's fake made with G's graph,
    # reals and fakes in two D passes, G's fake computed again): bench/train_step.py's re-creation
    plain_passes = False

    def _step(self, x_real, attrs, classes, update_G: bool, suffix: str, losses: dict):
        m = self.cfg.model
        G, D = self.train_nets["G"], self.train_nets["D"]
        perm = torch.randperm(x_real.size(0), device=self.device)
        if classes is None:
            c_org, c_trg = self.full_label(attrs), self.full_label(attrs[perm])
            tgt = {"target_attrs": attrs[perm]}
            org = {"target_attrs": attrs}
        else:
            c_org, c_trg = self.full_label(classes=classes, batch=len(classes)), \
                self.full_label(classes=classes[perm], batch=len(classes))
            tgt, org = {"target_classes": classes[perm]}, {"target_classes": classes}
        set_requires_grad(self.D, True)
        reuse = update_G and self._can_reuse_fake() and not self.plain_passes
        with self.autocast():
            # G has not changed since its last step, so on a G iteration its D-step fake is the one
            # its own loss takes (the reference computes it again); else no graph is kept for it
            saved = self._norm_stats() if reuse else None
            with contextlib.nullcontext() if reuse or self.plain_passes else torch.no_grad():
                x_fake = G(x_real, c_trg)
            # D has no normalisation across the batch: one pass over reals and fakes gives each
            # sample's outputs as two passes would, and sums D's weight gradients in one product
            n = x_real.size(0)
            policy = parse_policy(m.diffaugment)
            if self.plain_passes:
                src_real, cls_real = D(diff_augment(x_real, policy))
                src_fake, _ = D(diff_augment(x_fake.detach(), policy))
            else:
                src, cls = D(diff_augment(torch.cat([x_real, x_fake.detach()]), policy))
                src_real, src_fake, cls_real = src[:n], src[n:], cls[:n]
            losses["D_real" + suffix] = gan_loss(m.gan_mode, src_real, True)
            losses["D_fake" + suffix] = gan_loss(m.gan_mode, src_fake, False)
            losses["D_cls" + suffix] = self._cls_loss(cls_real, **org)
            loss_D = losses["D_real" + suffix] + losses["D_fake" + suffix] + m.lambda_cls * losses["D_cls" + suffix]
            if m.gan_mode == "wgangp":
                losses["D_gp" + suffix] = gradient_penalty(D, x_real, x_fake, m.lambda_gp)
                loss_D = loss_D + losses["D_gp" + suffix]
        self.optimize("D", loss_D)
        if not update_G:
            return
        set_requires_grad(self.D, False)
        with self.autocast():
            if reuse:
                self._repeat_norm_update(saved)
            else:
                x_fake = G(x_real, c_trg)
            src, cls = self.D(diff_augment(x_fake, parse_policy(m.diffaugment)))
            losses["G_fake" + suffix] = gan_loss(m.gan_mode, src, True, for_discriminator=False)
            losses["G_cls" + suffix] = self._cls_loss(cls, **tgt)
            mask = self.G.last_attention
            losses["G_rec" + suffix] = l1_loss(G(x_fake, c_org), x_real)
            loss_G = (losses["G_fake" + suffix] + m.lambda_rec * losses["G_rec" + suffix]
                      + m.lambda_cls * losses["G_cls" + suffix])
            if m.attention and (m.lambda_mask or m.lambda_tv):
                masks = torch.cat([mask, self.G.last_attention]).float()
                losses["G_mask" + suffix] = masks.mean()
                losses["G_tv" + suffix] = total_variation_loss(masks)
                loss_G = loss_G + m.lambda_mask * losses["G_mask" + suffix] + m.lambda_tv * losses["G_tv" + suffix]
            if m.lambda_id:
                losses["G_id" + suffix] = l1_loss(G(x_real, c_org), x_real)
                loss_G = loss_G + m.lambda_id * losses["G_id" + suffix]
        self.optimize("G", loss_G)
        set_requires_grad(self.D, True)

    def train_step(self, batch):
        iteration = self.schedulers["D"].last_epoch  # restored on resume with the scheduler
        update_G = (iteration + 1) % self.cfg.model.n_critic == 0
        losses = {}
        self._step(self.to_device(batch["image"]), self.to_device(batch["label"]), None, update_G, "", losses)
        if self.c2_dim:
            self._step(self.to_device(batch["image2"]), None, batch["class2"].to(self.device), update_G, "_2",
                       losses)
        self.end_step()
        return losses

    def sample(self, batch):
        """Rows of input | each single-domain change (the reference's sample grid)."""
        x = self.to_device(batch["image"])
        attrs = self.to_device(batch["label"])
        with side_effect_free(self.G), self.autocast():
            outs = [self.G(x, self.full_label(c)).float() for c in single_domain_targets(attrs, self.attrs)]
        self._sample_outputs = outs[0]
        return image_grid([[x[i].float()] + [o[i] for o in outs] for i in range(x.size(0))])

    def export(self):
        card = self.card({"G": {"name": "stargan_G", "args": self.generator_args()}},
                         domains=self.attrs, exclusive_groups=exclusive_groups(self.attrs), classes=self.classes2)
        return {f"G.{k}": v for k, v in self.G.state_dict().items()}, card
