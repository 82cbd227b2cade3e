"""Initialise a narrow RRDBNet student from its teacher by structured channel selection.

An extension beyond the paper (docs/method.md, section 8), off in the paper-faithful stage files. For every feature
space of the teacher, keep the channels with the largest mean absolute activation on a few training inputs,
and slice every convolution that reads or writes that space with the same index set:

* the trunk space (num_feat channels: conv_first, every RDB/RRDB output through the residual additions,
  conv_body, the trunk sum) has one index set, used by every layer that reads or writes it;
* each growth output (conv1..conv4 of every RDB, num_grow_ch channels) has its own set, used by the conv
  that writes it and by the later convs of the same RDB that read it;
* each upsampling space (conv_up1, conv_up2, conv_hr outputs) has its own set.

Kept weights are not rescaled (rescaling to compensate for the lost width saturates the output). At full
width every channel is kept and the student reproduces the teacher exactly.
"""
from typing import Dict, List

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from basicsr.archs.rrdbnet_arch import RRDBNet


def _leaky(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2)


class _ActivationStats:
    """Accumulates the mean absolute activation per channel of named modules' outputs."""

    def __init__(self) -> None:
        self.sums: Dict[str, Tensor] = {}

    def hook(self, key: str, post=lambda x: x):
        def record(_module, _inputs, output):
            value = post(output).abs().mean(dim=(0, 2, 3)).double()
            self.sums[key] = self.sums.get(key, 0) + value
        return record


def channel_scores(teacher: RRDBNet, inputs: Tensor) -> Dict[str, Tensor]:
    """Per feature space, the teacher's mean |activation| per channel on ``inputs`` (B x 3 x H x W)."""
    stats = _ActivationStats()
    handles = [teacher.conv_first.register_forward_hook(stats.hook('trunk')),
               teacher.conv_body.register_forward_hook(stats.hook('trunk')),
               teacher.conv_up1.register_forward_hook(stats.hook('up1', _leaky)),
               teacher.conv_up2.register_forward_hook(stats.hook('up2', _leaky)),
               teacher.conv_hr.register_forward_hook(stats.hook('hr', _leaky))]
    for b, block in enumerate(teacher.body):
        for r in (1, 2, 3):
            rdb = getattr(block, f'rdb{r}')
            handles.append(rdb.register_forward_hook(stats.hook('trunk')))
            for c in range(1, 5):
                hook = stats.hook(f'body.{b}.rdb{r}.g{c}', _leaky)
                handles.append(getattr(rdb, f'conv{c}').register_forward_hook(hook))
    was_training = teacher.training
    teacher.eval()
    try:
        with torch.no_grad():
            teacher(inputs)
    finally:
        teacher.train(was_training)
        for h in handles:
            h.remove()
    return stats.sums


def _top(scores: Tensor, k: int) -> Tensor:
    """The k best channels, in their original order (keeps the teacher's layout when k == all)."""
    return torch.sort(torch.topk(scores, k).indices).values


def select_channels(teacher: RRDBNet, student: RRDBNet, inputs: Tensor) -> Dict[str, Tensor]:
    """The kept teacher channel indices per feature space, for the student's widths."""
    feat_s = student.conv_first.out_channels
    grow_s = student.body[0].rdb1.conv1.out_channels
    scores = channel_scores(teacher, inputs)
    keep = {'trunk': _top(scores['trunk'], feat_s)}
    for key in ('up1', 'up2', 'hr'):
        keep[key] = _top(scores[key], feat_s)
    for key, value in scores.items():
        if '.g' in key:
            keep[key] = _top(value, grow_s)
    return keep


def _copy(dst: nn.Conv2d, src: nn.Conv2d, out_idx: Tensor, in_idx: Tensor) -> None:
    dst.weight.copy_(src.weight[out_idx][:, in_idx])
    dst.bias.copy_(src.bias[out_idx])


@torch.no_grad()
def init_student_from_teacher(teacher: RRDBNet, student: RRDBNet, inputs: Tensor) -> Dict[str, Tensor]:
    """Copy the selected teacher channels into ``student`` (same depth and scale, narrower widths).

    ``inputs`` are a few training LR inputs in the teacher's input range. Returns the kept indices.
    """
    if len(student.body) != len(teacher.body):
        raise ValueError(f'student has {len(student.body)} RRDB blocks, the teacher {len(teacher.body)}: '
                         'channel selection needs the same depth')
    if student.conv_first.in_channels != teacher.conv_first.in_channels or student.scale != teacher.scale:
        raise ValueError('student and teacher differ in scale or input channels')
    feat_t = teacher.conv_first.out_channels
    grow_t = teacher.body[0].rdb1.conv1.out_channels
    if student.conv_first.out_channels > feat_t or student.body[0].rdb1.conv1.out_channels > grow_t:
        raise ValueError('the student is wider than the teacher')
    keep = select_channels(teacher, student, inputs.to(next(teacher.parameters()).device))
    keep = {k: v.to(student.conv_first.weight.device) for k, v in keep.items()}
    rgb_in = torch.arange(teacher.conv_first.in_channels, device=keep['trunk'].device)
    rgb_out = torch.arange(teacher.conv_last.out_channels, device=keep['trunk'].device)
    trunk = keep['trunk']
    _copy(student.conv_first, teacher.conv_first, trunk, rgb_in)
    for b, (block_s, block_t) in enumerate(zip(student.body, teacher.body)):
        for r in (1, 2, 3):
            rdb_s, rdb_t = getattr(block_s, f'rdb{r}'), getattr(block_t, f'rdb{r}')
            growth: List[Tensor] = []
            for c in range(1, 6):
                # the input of conv c is [trunk, g1, ..., g(c-1)] concatenated, at teacher offsets
                in_idx = torch.cat([trunk] + [feat_t + i * grow_t + g for i, g in enumerate(growth)])
                out_idx = trunk if c == 5 else keep[f'body.{b}.rdb{r}.g{c}']
                _copy(getattr(rdb_s, f'conv{c}'), getattr(rdb_t, f'conv{c}'), out_idx, in_idx)
                if c < 5:
                    growth.append(out_idx)
    _copy(student.conv_body, teacher.conv_body, trunk, trunk)
    _copy(student.conv_up1, teacher.conv_up1, keep['up1'], trunk)
    _copy(student.conv_up2, teacher.conv_up2, keep['up2'], keep['up1'])
    _copy(student.conv_hr, teacher.conv_hr, keep['hr'], keep['up2'])
    _copy(student.conv_last, teacher.conv_last, rgb_out, keep['hr'])
    return keep
