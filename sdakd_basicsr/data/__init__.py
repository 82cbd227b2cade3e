"""Datasets registered in basicsr's DATASET_REGISTRY (explicit imports, no folder scanning)."""
from .cached_paired_dataset import TeacherCachedPairedDataset  # noqa: F401
from .face_dataset import FFHQ_control_Dataset, GCFSRFaceDataset, GCFSRFaceValDataset  # noqa: F401
from .realesrgan_crop_dataset import RealESRGANCropDataset  # noqa: F401
