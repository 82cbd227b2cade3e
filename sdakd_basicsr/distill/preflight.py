"""Checks that run before BasicSR touches the disk, and the experiment lock.

BasicSR's ``train_pipeline`` creates (and, without ``--auto_resume``, archives) the experiment folder before
the model is built, so a check inside the model comes too late: a typo would already have renamed the
previous run of that name to ``<name>_archived_<time>``. ``preflight`` reads the option file as BasicSR will
(the same YAML loader and ``--force_yml`` rules), checks the device and the model type, and resolves an SDAKD
file (``options.resolve_options``: every other check) first; the model receives that resolution.
``ExperimentLock`` keeps two live runs out of one experiment folder.
"""
import atexit
import os
import socket
from os import path as osp
from typing import List, Optional, Sequence

import torch

from basicsr.utils.registry import MODEL_REGISTRY

from .file_schema import TOP_LEVEL, check_block_shapes, check_unknown_keys
from .option_file import read_option_file
from .options import SDAKDOptions, hand_over, resolve_options
from .schema import did_you_mean

CPU_FLAGS = '--force_yml num_gpu=0 datasets:train:prefetch_mode=~ datasets:train:pin_memory=false'


def _arg(argv: Sequence[str], flag: str) -> Optional[str]:
    return argv[argv.index(flag) + 1] if flag in argv and argv.index(flag) + 1 < len(argv) else None


def _forced(argv: Sequence[str]) -> List[str]:
    if '--force_yml' not in argv:
        return []
    entries = []
    for item in argv[argv.index('--force_yml') + 1:]:
        if item.startswith('--'):
            break
        entries.append(item)
    return entries


def read_options(argv: Sequence[str]) -> Optional[dict]:
    """The option dict of ``-opt`` with ``--force_yml`` applied, as basicsr's parse_options builds it."""
    path = _arg(argv, '-opt')
    if path is None or not osp.isfile(path):
        return None  # basicsr reports it
    return read_option_file(path, _forced(argv))


def check_device(opt: dict, where: str) -> None:
    """GPU settings on a machine without CUDA: an error that names the keys and the CPU line."""
    if torch.cuda.is_available():
        return
    problems = []
    num_gpu = opt.get('num_gpu', 'auto')
    if num_gpu != 'auto' and isinstance(num_gpu, int) and num_gpu > 0:
        problems.append(f'num_gpu: {num_gpu}')
    datasets = opt.get('datasets')
    for name, dataset in (datasets.items() if isinstance(datasets, dict) else ()):  # its shape: the schema's job
        if isinstance(dataset, dict) and dataset.get('prefetch_mode') == 'cuda':
            problems.append(f'datasets.{name}.prefetch_mode: cuda')
    if problems:
        raise RuntimeError(f'{where}: {", ".join(problems)}, but this machine has no CUDA device. To train on the '
                           f'CPU add: {CPU_FLAGS} (or set num_gpu: auto, which falls back to the CPU)')


def _check_model_type(model_type) -> None:
    names = MODEL_REGISTRY._obj_map
    if not isinstance(model_type, str) or not any(n in names for n in (model_type, f'{model_type}_basicsr')):
        raise KeyError(f'model_type: {model_type!r} is not a registered model{did_you_mean(model_type, names, 0.6)}'
                       '; SDAKD runs use model_type: SDAKDModel')


def check_options(opt: dict, where: str, root_path: str) -> Optional[SDAKDOptions]:
    """Every check of an option dict (``where``: its file, put in front of every message); returns an SDAKD
    file's resolved options (None for another model type)."""
    try:
        check_block_shapes(opt)  # before any check reads keys of a block
        check_device(opt, where)
        if 'model_type' not in opt:  # a misspelt model_type: name the misspelling, not the missing key
            check_unknown_keys('', [k for k in opt if not k.startswith('network_')], TOP_LEVEL)
        _check_model_type(opt.get('model_type'))
        if opt.get('model_type') != 'SDAKDModel':
            return None
        return resolve_options(dict(opt, is_train=True, root_path=root_path))
    except (KeyError, ValueError, TypeError, OSError, RuntimeError) as err:
        message = err.args[0] if err.args and isinstance(err.args[0], str) else str(err)
        if not message.startswith(where):  # every message names the file
            err.args = (f'{where}: {message}',) + err.args[1:]
        raise


def preflight(argv: Sequence[str], root_path: str) -> Optional[dict]:
    """Every check that can fail, before any folder is created or archived; the resolution is handed over to the
    model this process builds next. Returns the options read."""
    opt = read_options(argv)
    if opt is not None:
        sd = check_options(opt, _arg(argv, '-opt'), root_path)
        if sd is not None:
            hand_over(dict(opt, is_train=True, root_path=root_path), sd)
    return opt


class ExperimentLock:
    """``experiments/<name>.lock`` (beside the folder, so archiving cannot move it) holding host and PID.

    A second run of the same experiment is refused while the first is alive; a lock left by a dead process
    is reported and taken over.
    """

    def __init__(self, root_path: str, name: str) -> None:
        self.path = osp.join(root_path, 'experiments', f'{name}.lock')
        self.owned = False

    def acquire(self, log=print) -> None:
        os.makedirs(osp.dirname(self.path), exist_ok=True)
        me = f'{socket.gethostname()} {os.getpid()}'
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                holder = self._holder()
                if holder is not None and self._alive(*holder):
                    raise RuntimeError(f'experiment {osp.basename(self.path)[:-5]!r} is in use by another run '
                                       f'(host {holder[0]}, PID {holder[1]}; lock {self.path}); wait for it, stop '
                                       f'it, or give this run another name') from None
                log(f'removing a stale lock {self.path} (held by {holder or "an unreadable entry"}, no longer '
                    f'running)')
                try:
                    os.remove(self.path)
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, 'w') as f:
                f.write(me + '\n')
            self.owned = True
            atexit.register(self.release)
            return

    def _holder(self):
        try:
            host, pid = open(self.path).read().split()
            return host, int(pid)
        except (OSError, ValueError):
            return None

    @staticmethod
    def _alive(host: str, pid: int) -> bool:
        if host != socket.gethostname():
            return True  # another machine's process: cannot be checked from here, assume alive
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def release(self) -> None:
        if self.owned and osp.isfile(self.path):
            os.remove(self.path)
        self.owned = False
