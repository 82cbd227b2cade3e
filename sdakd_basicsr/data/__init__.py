"""Datasets registered in basicsr's DATASET_REGISTRY (explicit imports, no folder scanning)."""
from .realesrgan_crop_dataset import RealESRGANCropDataset  # noqa: F401
