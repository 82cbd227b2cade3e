"""One USM pass per batch instead of two in basicsr's Real-ESRGAN synthesis.

``RealESRGANModel.feed_data`` sharpens the full GT (the degradations start from it), crops, runs the
training-pair queue and then sharpens the (now dequeued) GT crops a second time, because the queue holds
only the plain GT. ``RealESRNetModel`` (``gt_usm: true``) sharpens once and crops. Pooling the sharpened GT
with the plain one makes the second pass unnecessary and gives RealESRNet's target: crops of the sharpened
full image (no reflect padding of USM's 101-pixel kernel at the crop borders).
"""
from typing import Optional

import torch
from torch import Tensor, nn


class PooledSharpener(nn.Module):
    """Wraps ``USMSharp``; ``hand_back(t)`` makes the next call with a same-shaped input return ``t``."""

    def __init__(self, usm: nn.Module) -> None:
        super().__init__()
        self.usm = usm
        self._pooled: Optional[Tensor] = None

    def hand_back(self, sharpened: Tensor) -> None:
        self._pooled = sharpened

    def forward(self, img: Tensor, *args, **kwargs) -> Tensor:
        pooled, self._pooled = self._pooled, None
        if pooled is not None and pooled.shape == img.shape:
            return pooled
        return self.usm(img, *args, **kwargs)


def pool_with_sharpened(model, dequeue) -> None:
    """Run basicsr's ``dequeue`` (the training-pair pool) on GT and sharpened GT together, then have the
    model's sharpener hand the pooled sharpened crops back instead of sharpening again."""
    channels = model.gt.shape[1]
    model.gt = torch.cat([model.gt, model.gt_usm], 1)
    dequeue()
    model.gt, sharpened = model.gt[:, :channels], model.gt[:, channels:]
    model.usm_sharpener.hand_back(sharpened)
