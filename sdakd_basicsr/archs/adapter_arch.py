"""Feature adapters A_l (docs/method.md, section 4): map student features (r*C channels) to teacher features (C).

One adapter per tapped layer, in the order of ``sdakd.taps``. The channel pairs are not written in the
option file: the SDAKD model probes the taps of both generators at start-up and passes them in, so the
option file only says which kind of adapter and how wide.

Where the student's feature map is ``stride`` times larger than the teacher's (an SRVGGNetCompact x2 student
of the x2plus teacher, whose body runs on the pixel-unshuffled input), the adapter first pixel-unshuffles the
student feature by ``stride``: no information is dropped and the MLP sees every student pixel.
"""
from typing import List, Optional, Sequence

from torch import Tensor, nn

from basicsr.utils.registry import ARCH_REGISTRY

ADAPTER_KINDS = ('mlp', 'conv1x1')


def make_adapter(in_channels: int, out_channels: int, kind: str = 'mlp',
                 hidden_channels: Optional[int] = None) -> nn.Module:
    """``mlp``: 1x1 conv -> ReLU -> 1x1 conv (a per-pixel MLP); ``conv1x1``: one linear 1x1 conv (ablation)."""
    if kind == 'mlp':
        hidden = hidden_channels or out_channels
        return nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, out_channels, 1))
    if kind == 'conv1x1':
        return nn.Conv2d(in_channels, out_channels, 1)
    raise ValueError(f'network_adapters.kind: unknown adapter kind {kind!r}; choose one of {ADAPTER_KINDS}')


@ARCH_REGISTRY.register()
class FeatureAdapters(nn.Module):
    """A list of adapters, one per tap.

    Args:
        channels: ``[(student_channels, teacher_channels[, stride]), ...]`` per tap (filled in by the SDAKD
            model); ``stride`` (default 1): how many times larger the student's feature map is than the teacher's.
        kind: ``mlp`` (the paper's MLP-based adaptation) or ``conv1x1``.
        hidden_channels: hidden width of the MLP; default: the teacher's channels of that tap.
    """
    filled_in_by_model = ('channels',)  # the option-file check does not ask for these

    def __init__(self, channels: Sequence[Sequence[int]], kind: str = 'mlp',
                 hidden_channels: Optional[int] = None) -> None:
        super().__init__()
        self.channels = [tuple(int(c) for c in entry) for entry in channels]
        adapters = []
        for entry in self.channels:
            if len(entry) not in (2, 3) or min(entry) < 1:
                raise ValueError(f'FeatureAdapters.channels: {entry} is not (student, teacher[, stride]) >= 1')
            cs, ct, stride = (*entry, 1)[:3]
            adapter = make_adapter(cs * stride * stride, ct, kind, hidden_channels)
            adapters.append(adapter if stride == 1 else nn.Sequential(nn.PixelUnshuffle(stride), adapter))
        self.adapters = nn.ModuleList(adapters)

    def forward(self, features: Sequence[Tensor]) -> List[Tensor]:
        if len(features) != len(self.adapters):
            raise ValueError(f'FeatureAdapters got {len(features)} feature maps for {len(self.adapters)} adapters')
        return [adapter(feat) for adapter, feat in zip(self.adapters, features)]
