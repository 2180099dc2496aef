"""StyleGAN2 (Karras et al. 2020), trained as rosinality/stylegan2-pytorch trains it.

Non-saturating logistic loss; lazy R1 on reals every ``d_reg_every`` steps (weight r1 / 2, times
the interval); style-mixing regularisation (two latents crossing at a random layer with
probability ``mixing``); optional path-length regularisation every ``g_reg_every`` steps; Adam
with betas (0, 0.99) and the learning rate and betas of a lazily regularised net scaled by
``interval / (interval + 1)``; an EMA copy of the generator (half-life ``ema_kimg`` thousand
images) that is the one sampled and exported, with its mean latent for truncation.
"""
from __future__ import annotations

import copy
import random
from dataclasses import dataclass

import torch

from trainer.config import ConfigError
from trainer.data.folder import FolderDataset
from trainer.losses import logistic_loss, path_length_penalty, r1_penalty
from trainer.methods.base import Method, image_grid, set_requires_grad, side_effect_free
from trainer.nets import build

SAMPLE_SEED = 1234


@dataclass
class StyleGANConfig:
    style_dim: int = 512
    n_mlp: int = 8
    channel_multiplier: int = 2
    channel_max: int = 512
    channel_base: int = 0  # 0: rosinality's channel table; else channel_base // resolution (StyleGAN2-ADA)
    lr_mlp: float = 0.01
    mixing: float = 0.9
    r1: float = 10.0
    d_reg_every: int = 16
    path_regularize: float = 0.0  # 2.0 in the paper's config; 0 turns it off
    path_batch_shrink: int = 2
    g_reg_every: int = 4
    ema_kimg: float = 10.0


class StyleGAN(Method):
    name = "stylegan"
    task = "style"
    ModelConfig = StyleGANConfig

    @classmethod
    def validate(cls, cfg):
        cls.check_common(cfg, "image folder layout (a folder of images)", "/path/to/faces")
        size, m = cfg.data.image_size, cfg.model
        if size < 8 or size & (size - 1):
            raise ConfigError(f"data.image_size = {size}: StyleGAN needs a power of two of at least 8")
        if not 0 <= m.mixing <= 1:
            raise ConfigError(f"model.mixing = {m.mixing}: a probability in [0, 1]")
        if m.d_reg_every < 1 or m.g_reg_every < 1:
            raise ConfigError("model.d_reg_every and model.g_reg_every must be at least 1")

    def __init__(self, cfg, device, amp_dtype=None, channels_last=False):
        super().__init__(cfg, device, amp_dtype, channels_last)
        m, t = cfg.model, cfg.train
        self.G = self.add_net("G", build("stylegan_G", **self.generator_args()))
        self.D = self.add_net("D", build("stylegan_D", size=cfg.data.image_size,
                                         channel_multiplier=m.channel_multiplier, channel_max=m.channel_max,
                                         channel_base=m.channel_base))
        self.G_ema = self.add_net("G_ema", copy.deepcopy(self.G).eval())
        set_requires_grad(self.G_ema, False)
        g_ratio = m.g_reg_every / (m.g_reg_every + 1) if m.path_regularize > 0 else 1.0
        d_ratio = m.d_reg_every / (m.d_reg_every + 1) if m.r1 > 0 else 1.0
        self.add_optimizer("G", self.G.parameters(), t.lr * g_ratio, (t.beta1 ** g_ratio, t.beta2 ** g_ratio))
        self.add_optimizer("D", self.D.parameters(), t.lr * d_ratio, (t.beta1 ** d_ratio, t.beta2 ** d_ratio))
        self.mean_path_length = torch.zeros((), device=device)
        self.mix_rng = random.Random(t.seed)

    def generator_args(self) -> dict:
        m = self.cfg.model
        return {"size": self.cfg.data.image_size, "style_dim": m.style_dim, "n_mlp": m.n_mlp,
                "channel_multiplier": m.channel_multiplier, "channel_max": m.channel_max, "lr_mlp": m.lr_mlp, "channel_base": m.channel_base}

    def dataset(self, phase="train", log=print):
        d = self.cfg.data
        return FolderDataset(self.image_root(log), phase, d.image_size, 0, d.flip, log=log)

    def latents(self, b: int) -> list[torch.Tensor]:
        """One z per sample, or two (style mixing) with probability ``mixing``."""
        n = 2 if self.mix_rng.random() < self.cfg.model.mixing else 1
        return list(torch.randn(n, b, self.cfg.model.style_dim, device=self.device).unbind(0))

    def generate(self, G, b: int, return_latents=False):
        z = self.latents(b)
        k = self.mix_rng.randint(1, self.G.n_latent - 1) if len(z) == 2 else None
        return G(z, inject_index=k, return_latents=return_latents)

    def train_step(self, batch):
        m = self.cfg.model
        G, D = self.train_nets["G"], self.train_nets["D"]
        real = self.to_device(batch["image"])
        b = real.size(0)
        step = self.schedulers["D"].last_epoch
        losses = {}

        set_requires_grad(self.G, False)
        with self.autocast():
            fake = self.generate(G, b)
            losses["D_real"] = logistic_loss(D(real), True)
            losses["D_fake"] = logistic_loss(D(fake), False)
        self.optimize("D", losses["D_real"] + losses["D_fake"])
        if m.r1 > 0 and step % m.d_reg_every == 0:
            real = real.detach().requires_grad_(True)
            with self.autocast():
                prediction = D(real)
            losses["D_r1"] = r1_penalty(prediction, real)
            # the 0 * prediction term keeps every DDP parameter in the graph, as the reference does
            self.optimize("D", m.r1 / 2 * losses["D_r1"] * m.d_reg_every + 0 * prediction.float().mean())

        set_requires_grad(self.G, True)
        set_requires_grad(self.D, False)
        with self.autocast():
            losses["G"] = logistic_loss(D(self.generate(G, b)), True)
        self.optimize("G", losses["G"])
        if m.path_regularize > 0 and step % m.g_reg_every == 0:
            with self.autocast():
                images, w = self.generate(G, max(1, b // m.path_batch_shrink), return_latents=True)
            penalty, self.mean_path_length, losses["G_path_length"] = path_length_penalty(
                images, w, self.mean_path_length)
            losses["G_path"] = penalty
            self.optimize("G", m.path_regularize * m.g_reg_every * penalty + 0 * images.float().mean())
        set_requires_grad(self.D, True)
        self.accumulate(0.5 ** (b / (m.ema_kimg * 1000)))
        self.end_step()
        return losses

    @torch.no_grad()
    def accumulate(self, decay: float) -> None:
        """G_ema <- decay * G_ema + (1 - decay) * G."""
        ema, live = list(self.G_ema.parameters()), list(self.G.parameters())
        torch._foreach_lerp_(ema, live, 1.0 - decay)

    def truncation_latent(self) -> torch.Tensor:
        g = torch.Generator(device=self.device).manual_seed(0)
        return self.G_ema.mean_latent(4096, g)

    def sample(self, batch):
        """EMA generator on 8 fixed latents with fixed noise: psi 1, psi 0.7, and the first row's
        sources with the style of the next latent from the middle layer on."""
        z = torch.randn(9, self.cfg.model.style_dim, generator=torch.Generator().manual_seed(SAMPLE_SEED))
        z = z.to(self.device)
        G = self.G_ema
        with side_effect_free(G), self.autocast():
            mean = self.truncation_latent()
            rows = [G([z[:8]], randomize_noise=False),
                    G([z[:8]], randomize_noise=False, truncation=0.7, truncation_latent=mean),
                    G([z[:8], z[1:]], inject_index=G.n_latent // 2, randomize_noise=False)]
        self.sample_outputs = rows[0].float()
        return image_grid([list(r.float()) for r in rows])

    def state(self) -> dict:
        return {**super().state(), "mean_path_length": float(self.mean_path_length),
                "mix_rng": self.mix_rng.getstate()}

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        self.mean_path_length.fill_(state.get("mean_path_length", 0.0))
        if "mix_rng" in state:
            self.mix_rng.setstate(tuple(state["mix_rng"][:1]) + (tuple(state["mix_rng"][1]),)
                                  + tuple(state["mix_rng"][2:]))

    def export(self):
        with torch.no_grad():
            latent_avg = self.truncation_latent().float().cpu()
        card = self.card({"G": {"name": "stylegan_G", "args": self.generator_args()}},
                         n_latent=self.G.n_latent, layer_resolutions=self.G.layer_resolutions())
        tensors = {f"G.{k}": v for k, v in self.G_ema.state_dict().items()}
        tensors["latent_avg"] = latent_avg
        return tensors, card
