"""Losses registered in basicsr's LOSS_REGISTRY (explicit imports, no folder scanning)."""
from .distill_loss import FeatureMapDistillLoss, VGGPerceptualLoss  # noqa: F401
