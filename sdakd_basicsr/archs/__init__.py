"""Architectures registered in basicsr's ARCH_REGISTRY (explicit imports, no folder scanning)."""
from .adapter_arch import FeatureAdapters  # noqa: F401
from .gcfsr_arch import GCFSR, GCFSR_blind, StyleGAN2Discriminator_no_std  # noqa: F401
