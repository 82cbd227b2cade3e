"""Losses registered in basicsr's LOSS_REGISTRY (explicit imports, no folder scanning)."""
from .distill_loss import FeatureMapDistillLoss  # noqa: F401
from .perceptual_loss import VGGPerceptualLoss  # noqa: F401
from .texture_loss import (ArtifactGuardLoss, FeatureMatchLoss, FourierAmplitudeLoss, PatchSWDLoss,  # noqa: F401
                           WaveletBandLoss)
