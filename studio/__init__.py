"""GAN Studio, the desktop application: views and workers only; every model lives in ``trainer``."""
