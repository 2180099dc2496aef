"""Methods by name: a plain dict registry. Each method builds its nets from a config, does one
training step, makes sample grids and exports its generator."""
from trainer.methods.cyclegan import CycleGAN
from trainer.methods.dcgan import DCGAN, WGANGP
from trainer.methods.pix2pix import Pix2Pix
from trainer.methods.srgan import SRGAN
from trainer.methods.stargan import StarGAN
from trainer.methods.style_transfer import FastStyleTransfer
from trainer.methods.stylegan import StyleGAN

METHODS = {cls.name: cls for cls in (Pix2Pix, CycleGAN, StarGAN, DCGAN, WGANGP, StyleGAN, SRGAN, FastStyleTransfer)}


def get_method(name: str):
    from trainer.config import ConfigError
    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError(f"unknown method {name!r}; known: {', '.join(sorted(METHODS))}") from None
