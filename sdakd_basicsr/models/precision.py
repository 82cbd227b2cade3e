"""Numerics of the training loop: autocast, one GradScaler per optimizer, memory layout and finite checks
(``sdakd.amp``, ``channels_last``, ``check_finite``; docs/options.md). A frozen network in half precision
(``teacher_dtype``): ``archs/frozen_dtype.py``."""
import contextlib
from typing import Dict, List, Optional

import torch
from torch import Tensor, nn

from ..archs.frozen_dtype import DTYPES
from ..archs.generator_call import family_of


class Precision:
    """Mixed precision and layout for one run. ``amp``: None, 'bf16' or 'fp16' (the latter with a GradScaler
    per registered optimizer, whose state travels with the training state)."""

    def __init__(self, device: torch.device, amp: Optional[str], channels_last: bool, check_finite: bool,
                 stage: int) -> None:
        self.device, self.amp, self.channels_last = device, amp, channels_last
        self.check_finite_enabled, self.stage = check_finite, stage
        self.scalers: Dict[int, torch.amp.GradScaler] = {}  # id(optimizer) -> scaler (fp16 only)

    # -------------------------------------------------------------- forward
    def autocast(self):
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=DTYPES[self.amp])

    def layout(self, net: nn.Module) -> nn.Module:
        """With ``channels_last``, every 4-D parameter and buffer in channels-last layout (in place). Not
        ``net.to(memory_format=...)``: that also demands it of 5-D tensors, e.g. GCFSR's modulated weights."""
        if self.channels_last:
            family_of(net).check_channels_last()
            net._apply(lambda t: t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t)
        return net

    def layout_batch(self, t: Optional[Tensor]) -> Optional[Tensor]:
        if self.channels_last and t is not None and t.dim() == 4:
            return t.contiguous(memory_format=torch.channels_last)
        return t

    # -------------------------------------------------------------- backward
    def register(self, optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
        if self.amp == 'fp16':
            self.scalers[id(optimizer)] = torch.amp.GradScaler(self.device.type)
        return optimizer

    def backward(self, loss: Tensor, optimizer: torch.optim.Optimizer) -> None:
        scaler = self.scalers.get(id(optimizer))
        (scaler.scale(loss) if scaler is not None else loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        scaler = self.scalers.get(id(optimizer))
        if scaler is None:
            optimizer.step()
        else:  # skips the step when fp16 gradients overflowed, and adapts the scale
            scaler.step(optimizer)
            scaler.update()

    def check_finite(self, terms: Dict[str, Tensor], current_iter: int) -> None:
        if not self.check_finite_enabled:
            return
        for name, value in terms.items():
            if not torch.isfinite(value.detach()).all():
                raise FloatingPointError(
                    f'SDAKD stage {self.stage}: loss term {name} = {value.detach().float().mean().item()} at '
                    f'iteration {current_iter}. Training stopped before this step was applied; the checkpoints on '
                    f'disk are from earlier iterations and were not overwritten. Resume from them with a lower '
                    f'learning rate (applied at resume) or a lower loss_weight for this term: python '
                    f'sdakd_basicsr/train.py -opt <this option file> --auto_resume --force_yml '
                    f'train:optim_g:lr=<lower>')

    def check_weights(self, nets: Dict[str, Optional[nn.Module]], current_iter: int, limit: float,
                      resume_hint: str) -> None:
        """Divergence caught before a save: a non-finite or huge weight stops the run with nothing written."""
        if not limit:
            return
        for label, net in nets.items():
            if net is None or not any(p.requires_grad for p in net.parameters()):
                continue  # absent, or frozen: it cannot have moved
            for name, param in net.named_parameters():
                value = param.detach()
                finite = bool(torch.isfinite(value).all())
                largest = float(value.abs().max()) if finite else float('nan')
                if not finite or largest > limit:
                    raise FloatingPointError(
                        f'SDAKD stage {self.stage}: {label}.{name} has diverged at iteration {current_iter} (max |w| = '
                        f'{largest:.3g}; sdakd.max_abs_weight {limit:g}). Nothing was saved at this iteration: the '
                        f'newest checkpoints and training state on disk are healthy. Resume from them with a lower '
                        f'learning rate (it is applied at resume), e.g.: {resume_hint}')

    # -------------------------------------------------------------- state
    def state(self, optimizers: List[torch.optim.Optimizer]) -> Optional[list]:
        """The scalers' states in optimizer order (None for an optimizer without one), or None without fp16."""
        if not self.scalers:
            return None
        return [self.scalers[id(o)].state_dict() if id(o) in self.scalers else None for o in optimizers]

    def load_state(self, optimizers: List[torch.optim.Optimizer], saved: Optional[list], warn) -> None:
        if not self.scalers:
            return
        if saved is None or len(saved) != len(optimizers):
            warn('sdakd.amp fp16: the training state holds no GradScaler state (it was written without fp16); '
                 'the loss scales restart from their initial value')
            return
        for optimizer, scaler_state in zip(optimizers, saved):
            if scaler_state is not None and id(optimizer) in self.scalers:
                self.scalers[id(optimizer)].load_state_dict(scaler_state)
