"""What a training state must hold so that ``--auto_resume`` continues as if the run had never stopped.

BasicSR saves networks, optimizers and schedulers only. A resumed run then replays the interrupted epoch from
its start with fresh random numbers, and the training-pair queue starts empty. Here:

- ``rng_states`` / ``set_rng_states``: python, numpy, torch CPU and every CUDA device;
- ``ResumableLoader`` wraps the training DataLoader (``compat`` puts it around what basicsr's
  ``create_train_val_dataloader`` returns). It records the torch RNG at the start of each epoch (the loader
  draws its worker seeds from it) and counts the batches handed out. On resume it recreates the epoch's
  iterator from that RNG, draws and discards the batches the stopped run had already used (so that data
  workers, which keep their own random state, consume exactly what they did), then restores the RNG of the
  moment of the save. Exact with ``prefetch_mode`` ~ or cpu; basicsr's CUDA prefetcher reads one batch ahead
  of the save, which the resumed run draws again with the saved RNG (documented in docs/training.md).
- ``queue_state`` / ``set_queue_state``: the Real-ESRGAN training-pair queue (``queue_*`` tensors, pointer).
- ``option_changes``: the options of the resumed run against the saved ones: which are applied, which cannot
  change the training, and which must refuse the resume.
"""
import json
import random
import re
from typing import Any, Dict, Iterable, List, Optional, Tuple

import numpy as np
import torch

from ..distill.file_schema import RUNTIME_KEYS

_CURRENT: Dict[str, 'ResumableLoader'] = {}  # the training loader of this process (one run per process)


def rng_states() -> dict:
    """Every random state of this process, as tensors and plain containers (``torch.load`` with its default
    ``weights_only`` reads them back)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {'python': random.getstate(), 'numpy': (kind, torch.from_numpy(keys.astype(np.int64)), int(pos),
                                                    int(has_gauss), float(gauss)), 'torch': torch.get_rng_state()}
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_states(state: dict) -> None:
    random.setstate(state['python'])
    kind, keys, pos, has_gauss, gauss = state['numpy']
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state['torch'])
    if state.get('cuda') is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


class ResumableLoader:
    """A DataLoader that knows its position in the epoch and can be put back there (see the module docstring)."""

    def __init__(self, loader) -> None:
        self.loader = loader
        self.epoch_rng: Optional[dict] = None
        self.batches = 0
        self._pending: Optional[dict] = None
        _CURRENT['train'] = self

    def __getattr__(self, name: str) -> Any:  # sampler, dataset, batch_size ... of the wrapped loader
        return getattr(self.loader, name)

    def __len__(self) -> int:
        return len(self.loader)

    def position(self) -> dict:
        return {'epoch_rng': self.epoch_rng, 'batches': self.batches}

    def resume_at(self, position: dict, rng_at_save: dict) -> None:
        """Make the next ``iter()`` continue the saved epoch after ``position['batches']`` batches."""
        self._pending = dict(position, rng_at_save=rng_at_save)

    def __iter__(self):
        pending, self._pending = self._pending, None
        if pending is not None and pending.get('epoch_rng') is not None:
            set_rng_states(pending['epoch_rng'])
        self.epoch_rng, self.batches = rng_states(), 0
        iterator = iter(self.loader)
        if pending is not None:
            for _ in range(pending['batches']):  # the batches the stopped run had used: drawn, not trained on
                next(iterator)
                self.batches += 1
            set_rng_states(pending['rng_at_save'])
        for batch in iterator:
            self.batches += 1
            yield batch


def current_loader() -> Optional[ResumableLoader]:
    return _CURRENT.get('train')


def queue_state(model) -> Optional[dict]:
    """The training-pair queue of basicsr's RealESRGANModel (and ours), when it has been created."""
    state = {k: v for k, v in vars(model).items() if k.startswith('queue_') and isinstance(v, (torch.Tensor, int))}
    return {k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in state.items()} or None


def set_queue_state(model, state: Optional[dict]) -> None:
    for key, value in (state or {}).items():
        setattr(model, key, value.to(model.device) if isinstance(value, torch.Tensor) else value)


# ------------------------------------------------------------------------------------------ options at resume
# Keys a resume may change. APPLIED: they take effect (logged); NO_EFFECT: they cannot change the trained
# weights (paths, logging, validation, hardware). Everything else differing refuses the resume.
APPLIED = (r'train\.optim_\w+\.lr', r'train\.\w+_opt\.loss_weight', r'train\.total_iter', r'train\.scheduler\.\w+')
NO_EFFECT = (r'name', r'path\..*', r'logger\..*', r'val\..*', r'datasets\.val\w*(\..*)?', r'num_gpu',
             r'dist_params\..*',
             r'datasets\.train\.(num_worker_per_gpu|prefetch_mode|pin_memory|persistent_workers|num_prefetch_queue)',
             *RUNTIME_KEYS, r'sdakd\.log_grad_norms',
             r'sdakd\.check_finite', r'sdakd\.max_abs_weight', r'sdakd\.teacher_g\.path')


def _flatten(node: Any, prefix: str = '') -> Dict[str, Any]:
    if isinstance(node, dict):
        out: Dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flatten(value, f'{prefix}.{key}' if prefix else str(key)))
        return out
    return {prefix: node}


def comparable_options(opt: dict) -> dict:
    """The option dict as saved in a training state (plain containers only)."""
    return json.loads(json.dumps(opt, default=str))


def option_changes(saved: dict, now: dict) -> Tuple[List[str], List[str], List[str]]:
    """(applied, no effect, refused) lines, one per key whose value differs between ``saved`` and ``now``."""

    def matches(key: str, patterns: Iterable[str]) -> bool:
        return any(re.fullmatch(p, key) for p in patterns)
    before, after = _flatten(comparable_options(saved)), _flatten(comparable_options(now))
    applied, no_effect, refused = [], [], []
    for key in sorted(set(before) | set(after)):
        if before.get(key, '<absent>') == after.get(key, '<absent>'):
            continue
        line = f'{key}: {before.get(key, "<absent>")!r} -> {after.get(key, "<absent>")!r}'
        (applied if matches(key, APPLIED) else no_effect if matches(key, NO_EFFECT) else refused).append(line)
    return applied, no_effect, refused
