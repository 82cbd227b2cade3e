"""The feature-map distillation loss (docs/method.md, "Feature-map distillation")."""
from typing import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from basicsr.utils.registry import LOSS_REGISTRY

_CRITERIA = {'mse': F.mse_loss, 'l1': F.l1_loss}


@LOSS_REGISTRY.register()
class FeatureMapDistillLoss(nn.Module):
    """L_fmd = loss_weight * mean over taps of criterion(A_l(F_S,l), stopgrad(F_T,l)).

    Args:
        loss_weight: w_fmd.
        criterion: ``mse`` (default) or ``l1``.
    """

    def __init__(self, loss_weight: float = 1.0, criterion: str = 'mse') -> None:
        super().__init__()
        if criterion not in _CRITERIA:
            raise ValueError(f'fmd_opt.criterion: unknown criterion {criterion!r}; choose one of {sorted(_CRITERIA)}')
        self.loss_weight = loss_weight
        self.criterion = _CRITERIA[criterion]

    def forward(self, student_feats: Sequence[Tensor], teacher_feats: Sequence[Tensor]) -> Tensor:
        if len(student_feats) != len(teacher_feats) or not student_feats:
            raise ValueError(f'FeatureMapDistillLoss: {len(student_feats)} student vs {len(teacher_feats)} '
                             'teacher feature maps')
        per_tap = []
        for fs, ft in zip(student_feats, teacher_feats):
            if fs.shape != ft.shape:
                raise ValueError(f'FeatureMapDistillLoss: adapted student feature {tuple(fs.shape)} does not '
                                 f'match teacher feature {tuple(ft.shape)}')
            per_tap.append(self.criterion(fs, ft.detach()))
        return self.loss_weight * torch.stack(per_tap).mean()
