"""GAN Studio's engine: networks, losses, methods, data, runs and model files.

torch only; this package never imports Qt or the studio.
"""
__version__ = "0.1.0"
