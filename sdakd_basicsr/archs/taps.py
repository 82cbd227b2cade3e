"""Feature taps: forward hooks on named modules that record their outputs."""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor, nn

from .generator_call import bare_model as bare


def tap_candidates(net: nn.Module, max_depth: int = 2) -> List[str]:
    """Module names up to ``max_depth`` dotted components: what a user would pick as a tap."""
    return [name for name, _ in bare(net).named_modules() if name and name.count('.') < max_depth]


class TapsComplete(Exception):
    """Raised by a FeatureTaps hook once every tap has recorded, to cut a forward pass short."""


class FeatureTaps:
    """Records the outputs of the named modules of ``net`` on every forward pass.

    Unknown names fail at construction with the list of valid ones, so a typo in ``sdakd.taps``
    stops the run at start-up rather than after hours.
    """

    def __init__(self, net: nn.Module, names: Sequence[str], owner: str = 'network',
                 out_dtype: Optional[torch.dtype] = None, option_key: str = 'sdakd.taps') -> None:
        modules = dict(bare(net).named_modules())
        unknown = [n for n in names if n not in modules or n == '']
        if unknown:
            valid = tap_candidates(net)
            raise KeyError(f'{option_key}: {unknown} are not modules of the {owner} '
                           f'({type(bare(net)).__name__}). Valid names include: {", ".join(valid)}')
        self.names = list(names)
        self.out_dtype = out_dtype  # e.g. float32 for a half-precision teacher: the losses see fp32 features
        self.features: Dict[str, Tensor] = OrderedDict()
        self.calls: Dict[str, int] = {n: 0 for n in self.names}  # per forward pass, since the last clear()
        self.stop_when_complete = False  # raise TapsComplete once every tap fired (the output is not needed)
        self._handles = [modules[n].register_forward_hook(self._recorder(n)) for n in self.names]

    def _recorder(self, name: str):
        def hook(_module, _inputs, output):
            self.calls[name] = self.calls.get(name, 0) + 1
            self.features[name] = output[0] if isinstance(output, (tuple, list)) else output
            if self.stop_when_complete and len(self.features) == len(self.names):
                raise TapsComplete
        return hook

    def clear(self) -> None:
        self.features.clear()
        self.calls = {n: 0 for n in self.names}

    def check_called_once(self, owner: str) -> None:
        """After one forward pass: every tap fired exactly once. A module the forward calls twice (a shared
        activation, a block applied in a loop) records only its last call, of another size or meaning than the
        other network's tap: refused at start-up, naming it."""
        bad = {n: c for n, c in self.calls.items() if c != 1}
        if bad:
            raise ValueError(f'sdakd.taps: in the {owner}, ' + ', '.join(
                f'{n} ran {c} times' for n, c in bad.items()) + ' in one forward pass; tap modules that run once '
                '(e.g. a block\'s output, not a shared activation)')

    def collect(self) -> List[Tensor]:
        """The recorded features in tap order; fails if a tap did not fire (e.g. the forward was cut short)."""
        missing = [n for n in self.names if n not in self.features]
        if missing:
            raise RuntimeError(f'feature taps {missing} recorded nothing in the last forward pass')
        feats = [self.features[n] for n in self.names]
        return feats if self.out_dtype is None else [f.to(self.out_dtype) for f in feats]

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
