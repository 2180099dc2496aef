"""Network families by name. ``build(name, **kwargs)`` makes any of them from a model card."""
from trainer.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from trainer.nets.latent_encoder import LatentEncoder
from trainer.nets.patchgan import ImageDiscriminator, MultiscaleDiscriminator, NLayerDiscriminator, PixelDiscriminator
from trainer.nets.resnet import ResnetGenerator
from trainer.nets.srresnet import SRDiscriminator, SRResNet
from trainer.nets.stargan import StarDiscriminator, StarGenerator
from trainer.nets.stylegan import StyleGenerator
from trainer.nets.stylegan_d import StyleDiscriminator
from trainer.nets.transformer_net import TransformerNet
from trainer.nets.unet import UnetGenerator

NETS = {
    "unet": UnetGenerator,
    "latent_encoder": LatentEncoder,
    "patchgan": NLayerDiscriminator,
    "multiscale_patchgan": MultiscaleDiscriminator,
    "pixelgan": PixelDiscriminator,
    "imagegan": ImageDiscriminator,
    "resnet": ResnetGenerator,
    "stargan_G": StarGenerator,
    "stargan_D": StarDiscriminator,
    "dcgan_G": DCGANGenerator,
    "dcgan_D": DCGANDiscriminator,
    "stylegan_G": StyleGenerator,
    "stylegan_D": StyleDiscriminator,
    "srresnet": SRResNet,
    "srgan_D": SRDiscriminator,
    "transformer_net": TransformerNet,
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
