"""Feature adapters A_l (docs/method.md, section 4): map student features (r*C channels) to teacher features (C).

One adapter per tapped layer, in the order of ``sdakd.taps``. The channel pairs are not written in the
option file: the SDAKD model probes the taps of both generators at start-up and passes them in, so the
option file only says which kind of adapter and how wide.
"""
from typing import List, Optional, Sequence, Tuple

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
        channels: ``[(student_channels, teacher_channels), ...]`` per tap (filled in by the SDAKD model).
        kind: ``mlp`` (the paper's MLP-based adaptation) or ``conv1x1``.
        hidden_channels: hidden width of the MLP; default: the teacher's channels of that tap.
    """
    filled_in_by_model = ('channels',)  # the option-file check does not ask for these

    def __init__(self, channels: Sequence[Tuple[int, int]], kind: str = 'mlp',
                 hidden_channels: Optional[int] = None) -> None:
        super().__init__()
        self.channels = [tuple(int(c) for c in pair) for pair in channels]
        self.adapters = nn.ModuleList(make_adapter(cs, ct, kind, hidden_channels) for cs, ct in self.channels)

    def forward(self, features: Sequence[Tensor]) -> List[Tensor]:
        if len(features) != len(self.adapters):
            raise ValueError(f'FeatureAdapters got {len(features)} feature maps for {len(self.adapters)} adapters')
        return [adapter(feat) for adapter, feat in zip(self.adapters, features)]
