"""Datasets: folder layouts (aligned, ...), procedural datasets with ground truth, and image
decoding that never crashes a job."""
from trainer.data.imageio import ImageError, open_image, scan_images

__all__ = ["ImageError", "open_image", "scan_images"]
