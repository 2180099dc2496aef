"""Network families by name. ``build(name, **kwargs)`` makes any of them from a model card."""
from trainer.nets.patchgan import ImageDiscriminator, NLayerDiscriminator, PixelDiscriminator
from trainer.nets.unet import UnetGenerator

NETS = {
    "unet": UnetGenerator,
    "patchgan": NLayerDiscriminator,
    "pixelgan": PixelDiscriminator,
    "imagegan": ImageDiscriminator,
}


def register(name: str, cls) -> None:
    NETS[name] = cls


def build(name: str, **kwargs):
    """Construct network ``name`` with constructor arguments ``kwargs`` (as stored in a model card)."""
    try:
        cls = NETS[name]
    except KeyError:
        raise ValueError(f"unknown network {name!r}; known: {', '.join(sorted(NETS))}") from None
    return cls(**kwargs)
