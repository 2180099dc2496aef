"""The image pool of Shrivastava et al. (2017), as CycleGAN uses it: the discriminator sees a
history of generated images, not only the latest. Once full, each query returns, half the
time, a stored fake (replacing it with the new one) and otherwise the new fake itself."""
from __future__ import annotations

import random

import torch


class ImagePool:
    def __init__(self, pool_size: int = 50, seed: int = 0):
        self.pool_size = pool_size
        self.images: list[torch.Tensor] = []
        self.rng = random.Random(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.pool_size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.pool_size:
                self.images.append(image.clone())
                out.append(image)
            elif self.rng.random() > 0.5:
                i = self.rng.randrange(self.pool_size)
                out.append(self.images[i].clone())
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        return {"images": [t.cpu() for t in self.images], "rng": list(self.rng.getstate()[1]),
                "rng_version": self.rng.getstate()[0], "rng_gauss": self.rng.getstate()[2]}

    def load_state_dict(self, state: dict, device=None) -> None:
        self.images = [t.to(device) if device is not None else t for t in state["images"]]
        self.rng.setstate((state["rng_version"], tuple(state["rng"]), state["rng_gauss"]))
