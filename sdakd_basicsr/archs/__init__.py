"""Architectures registered in basicsr's ARCH_REGISTRY (explicit imports, no folder scanning)."""
from .adapter_arch import FeatureAdapters  # noqa: F401
