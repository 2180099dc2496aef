"""CycleGAN (Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
Networks", 2017), as junyanz trains it.

G_A: A -> B, G_B: B -> A; D_A judges B-domain images (real B vs G_A(A)), D_B judges A-domain
ones. Loss: LSGAN (any GAN mode) + lambda_A |G_B(G_A(A)) - A| + lambda_B |G_A(G_B(B)) - B| +
identity lambda_identity * (lambda_B |G_A(B) - B| + lambda_A |G_B(A) - A|); each
discriminator sees a pool of 50 past fakes and its loss is halved.

Data: the unaligned layout (``trainA/``, ``trainB/``, :mod:`trainer.data.unaligned`); ``data.image_size``
a multiple of 4. Reference checkpoints: junyanz's ResNet generators, in and out.
"""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass

import torch

from trainer.controls import Control
from trainer.data.unaligned import UnalignedDataset
from trainer.errors import ConfigError
from trainer.evaluation import unpaired
from trainer.exporters import junyanz as junyanz_export
from trainer.exporters.onnx_graphs import ImageGraph, image_graph
from trainer.image_pool import ImagePool
from trainer.images import image_grid
from trainer.importers import ImportKind
from trainer.importers import junyanz as junyanz_import
from trainer.losses import gan_loss, l1_loss
from trainer.methods.base import (DISCRIMINATOR, GENERATOR, REGULARISATION, Method, set_requires_grad,
                                  side_effect_free)
from trainer.nets import build
from trainer.nets.init import init_weights
from trainer.translator import Translator, build_net, input_channels, resolution_control


@dataclass
class CycleGANConfig:
    """CycleGAN's ``[model]`` settings: ResNet generator and PatchGAN widths and depths, norm, GAN mode,
    the cycle and identity weights (``lambda_identity`` is a fraction of ``lambda_A``/``lambda_B``) and
    the image pool's size (0: no pool)."""
    ngf: int = 64
    ndf: int = 64
    n_blocks: int = 9
    n_layers_D: int = 3
    norm: str = "instance"
    dropout: bool = False
    init_type: str = "normal"
    init_gain: float = 0.02
    gan_mode: str = "lsgan"
    lambda_A: float = 10.0
    lambda_B: float = 10.0
    lambda_identity: float = 0.5
    residual: bool = False  # G(x) = x + residual image (trainer.nets.resnet), starting at identity
    pool_size: int = 50
    serial_batches: bool = False
    task: str = "photo2photo"


def generator_args(cfg) -> dict:
    m = cfg.model
    return {"input_nc": 3, "output_nc": 3, "ngf": m.ngf, "norm": m.norm, "use_dropout": m.dropout,
            "n_blocks": m.n_blocks, **({"residual": True} if m.residual else {})}


class CycleTranslator(Translator):
    """CycleGAN's two generators: a direction control, the cycle reconstruction on request, and
    the ``resolution`` (native by default: the image at its own size, padded to a multiple of 4).
    A model file with one generator (a shared one-direction model) offers that direction only."""

    reduced_precision = True  # bf16: within 2/255 of fp32 on the bundled shapes-cyclegan (docs/performance.md)

    def __init__(self, card, tensors, device="cpu"):
        super().__init__(card, tensors, device)
        self.G = {n: build_net(card, tensors, n, self.device).eval() for n in ("G_A", "G_B") if n in card["nets"]}
        directions = [d for d, n in (("AtoB", "G_A"), ("BtoA", "G_B")) if n in self.G]
        outputs = ["translation", "reconstruction"] if len(self.G) == 2 else ["translation"]
        self.controls = [
            Control("direction", "choice", directions[0], "Direction", "A to B or B to A", choices=directions),
            Control("output", "choice", "translation", "Output",
                    "translation, or the cycle reconstruction (translated there and back)", choices=outputs),
            resolution_control(card)]
        self.multiple = max(G.size_multiple for G in self.G.values())

    def forward_array(self, image, direction="AtoB", output="translation", resolution="native"):
        there, back = (self.G.get("G_A"), self.G.get("G_B")) if direction == "AtoB" else \
            (self.G.get("G_B"), self.G.get("G_A"))
        nets = [there] if output == "translation" else [there, back]
        return self.through(image, *nets, native=resolution == "native")

    def forward_tensor(self, x, tensors, direction="AtoB", output="translation", resolution="native"):
        self.check_size(x, 4)
        there, back = (self.G.get("G_A"), self.G.get("G_B")) if direction == "AtoB" else \
            (self.G.get("G_B"), self.G.get("G_A"))
        return self.through_tensor(x, *([there] if output == "translation" else [there, back]))

    def onnx_graphs(self, latent="z", mode=None, noise_mode="stored", noise_seed=0):
        """One graph per direction (``image`` -> ``output``; suffixes AtoB and BtoA for a pair);
        H and W multiples of 4."""
        out = []
        for direction, name in (("AtoB", "G_A"), ("BtoA", "G_B")):
            if name in self.G:
                G = copy.deepcopy(self.G[name]).eval()
                out.append(image_graph(direction if len(self.G) > 1 else "", ImageGraph(G), input_channels(G), 4,
                                       self.image_size, {"direction": direction}))
        return out


def _plan_junyanz(tensors: dict, card: dict, out):
    names = [n for n in ("G_A", "G_B") if n in card["nets"]]
    return junyanz_export.plan(tensors, card, out, names=names, model="cycle_gan" if len(names) == 2 else "test",
                               paired=False)


class CycleGAN(Method):
    name = "cyclegan"
    task = "photo2photo"
    paper = ('Zhu, Park, Isola, Efros: "Unpaired Image-to-Image Translation using Cycle-Consistent '
             'Adversarial Networks", ICCV 2017')
    ModelConfig = CycleGANConfig
    Translator = CycleTranslator
    layouts = frozenset({"unaligned"})
    loss_groups = {"idt_A": REGULARISATION, "idt_B": REGULARISATION, "G_A": GENERATOR, "G_B": GENERATOR,
                   "cycle_A": REGULARISATION, "cycle_B": REGULARISATION, "D_A": DISCRIMINATOR, "D_B": DISCRIMINATOR}
    import_kinds = {"cyclegan": ImportKind(
        junyanz_import.import_resnet,
        "junyanz CycleGAN ResNet generator(s) (latest_net_G_A.pth: G_B beside it is read too)",
        detect=junyanz_import.is_resnet, signature="a CycleGAN ResNet (model.1.weight, model.N.conv_block.*)")}
    export_formats = {"junyanz": _plan_junyanz}

    @classmethod
    def check_image_size(cls, size, model=None):
        """A multiple of 4 (two stride-2 downsamplings and upsamplings)."""
        if size % 4:
            raise ConfigError(f"data.image_size = {size}: must be a multiple of 4")

    @classmethod
    def validate(cls, cfg):
        cls.check_common(cfg, "unaligned layout (trainA/ and trainB/)", "/path/to/horse2zebra")
        cls.check_image_size(cfg.data.image_size, cfg.model)
        cls.check_norm(cfg.model.norm)
        if cfg.model.pool_size < 0:
            raise ConfigError("model.pool_size must be >= 0")

    @classmethod
    def evaluate(cls, translator, data=None, n=None, progress=True, **options):
        """:func:`trainer.evaluation.unpaired.evaluate`: L1 and PSNR to the hidden counterpart, domain accuracy."""
        return unpaired.evaluate(translator, data=data, n=n, progress=progress, **options)

    def __init__(self, cfg, device, amp_dtype=None, channels_last=False, any_rank=None):
        super().__init__(cfg, device, amp_dtype, channels_last, any_rank)
        m, t = cfg.model, cfg.train
        for name in ("G_A", "G_B"):
            G = init_weights(build("resnet", **generator_args(cfg)), m.init_type, m.init_gain)
            self.add_net(name, G.start_at_identity() if m.residual else G)
        for name in ("D_A", "D_B"):
            self.add_net(name, init_weights(build("patchgan", input_nc=3, ndf=m.ndf, n_layers=m.n_layers_D,
                                                  norm=m.norm), m.init_type, m.init_gain))
        n = self.nets
        self.add_optimizer("G", itertools.chain(n["G_A"].parameters(), n["G_B"].parameters()), t.lr,
                           (t.beta1, t.beta2))
        self.add_optimizer("D", itertools.chain(n["D_A"].parameters(), n["D_B"].parameters()), t.lr,
                           (t.beta1, t.beta2))
        self.pools = {"A": ImagePool(m.pool_size, seed=t.seed), "B": ImagePool(m.pool_size, seed=t.seed + 1)}

    def dataset(self, phase="train", log=print):
        d = self.cfg.data
        root = self.data_root(log)
        if phase != "train":
            phase = "test" if (root / "testA").is_dir() and (root / "testB").is_dir() else "train"
        return UnalignedDataset(root, phase, d.image_size, d.load_size or None, d.preprocess, d.flip,
                                serial=self.cfg.model.serial_batches, log=log)

    def train_step(self, batch):
        m = self.cfg.model
        n = self.train_nets
        real_A, real_B = self.to_device(batch["A"]), self.to_device(batch["B"])
        losses = {}
        set_requires_grad([self.nets["D_A"], self.nets["D_B"]], False)
        identity = m.lambda_identity > 0
        together = self.per_sample() and real_A.shape == real_B.shape
        with self.autocast():
            if identity and together:  # three passes: G_A's translation and identity, then G_B's
                # translation, identity and reconstruction of fake_B, then G_A's reconstruction
                fake_B, idt_A = self.per_half(n["G_A"], real_A, real_B)
                fake_A, idt_B, rec_A = n["G_B"](torch.cat([real_B, real_A, fake_B])).split(real_A.size(0))
                rec_B = n["G_A"](fake_A)
            elif together:  # G_B's translation and reconstruction in one pass
                fake_B = n["G_A"](real_A)
                fake_A, rec_A = self.per_half(n["G_B"], real_B, fake_B)
                rec_B = n["G_A"](fake_A)
            else:
                fake_B, fake_A = n["G_A"](real_A), n["G_B"](real_B)
                rec_A, rec_B = n["G_B"](fake_B), n["G_A"](fake_A)
            loss_G = 0.0
            if identity:
                if not together:
                    idt_A, idt_B = n["G_A"](real_B), n["G_B"](real_A)
                losses["idt_A"] = l1_loss(idt_A, real_B) * m.lambda_B * m.lambda_identity
                losses["idt_B"] = l1_loss(idt_B, real_A) * m.lambda_A * m.lambda_identity
                loss_G = losses["idt_A"] + losses["idt_B"]
            losses["G_A"] = gan_loss(m.gan_mode, self.nets["D_A"](fake_B), True, for_discriminator=False)
            losses["G_B"] = gan_loss(m.gan_mode, self.nets["D_B"](fake_A), True, for_discriminator=False)
            losses["cycle_A"] = l1_loss(rec_A, real_A) * m.lambda_A
            losses["cycle_B"] = l1_loss(rec_B, real_B) * m.lambda_B
            loss_G = loss_G + losses["G_A"] + losses["G_B"] + losses["cycle_A"] + losses["cycle_B"]
        self.optimize("G", loss_G)
        set_requires_grad([self.nets["D_A"], self.nets["D_B"]], True)
        with self.autocast():
            # detached as the reference's backward_D_basic does (a pool of size 0 returns the fakes)
            pooled_B, pooled_A = self.pools["B"].query(fake_B).detach(), self.pools["A"].query(fake_A).detach()
            for name, real, pooled in (("D_A", real_B, pooled_B), ("D_B", real_A, pooled_A)):
                if self.per_sample() and real.shape == pooled.shape:
                    on_real, on_pooled = self.per_half(n[name], real, pooled)
                else:
                    on_real, on_pooled = n[name](real), n[name](pooled)
                losses[name] = (gan_loss(m.gan_mode, on_real, True) + gan_loss(m.gan_mode, on_pooled, False)) * 0.5
        self.optimize("D", losses["D_A"] + losses["D_B"])
        self.end_step()
        return losses

    def per_sample(self) -> bool:
        """Whether the nets treat each image of a batch on its own (instance norm or none, no
        dropout), so that two batches may go through a net as one with the same outputs and the
        same gradients (up to float rounding): fewer passes, and a net's weight gradients summed in
        one product instead of two."""
        return self.cfg.model.norm in ("instance", "none") and not self.cfg.model.dropout

    @staticmethod
    def per_half(net, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(net(a), net(b)) from one pass of net over a and b stacked on the batch axis."""
        out = net(torch.cat([a, b]))
        return out[:a.size(0)], out[a.size(0):]

    def state(self) -> dict:
        return {**super().state(), "pools": {k: p.state_dict() for k, p in self.pools.items()}}

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        for k, p in self.pools.items():
            if k in state.get("pools", {}):
                p.load_state_dict(state["pools"][k], self.device)

    def sample(self, batch):
        """Rows of real A | G_A(A) | G_B(G_A(A)) | real B | G_B(B) | G_A(G_B(B))."""
        a, b = self.to_device(batch["A"]), self.to_device(batch["B"])
        G_A, G_B = self.nets["G_A"], self.nets["G_B"]
        with side_effect_free(G_A, G_B), self.autocast():
            fb, fa = G_A(a), G_B(b)
            ra, rb = G_B(fb), G_A(fa)
        self._sample_outputs = fb.float()
        rows = zip(a.float(), fb.float(), ra.float(), b.float(), fa.float(), rb.float())
        return image_grid([list(r) for r in rows])

    def export(self):
        args = generator_args(self.cfg)
        card = self.card({"G_A": {"name": "resnet", "args": args}, "G_B": {"name": "resnet", "args": args}},
                         task=self.cfg.model.task, directions=["AtoB", "BtoA"])
        tensors = {f"{g}.{k}": v for g in ("G_A", "G_B") for k, v in self.nets[g].state_dict().items()}
        return tensors, card
