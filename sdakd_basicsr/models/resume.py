"""What a resumed run takes from its option file rather than from the saved training state.

BasicSR restores each optimizer's and scheduler's state as saved, learning rates included, so an lr lowered
for the resume (the advice after a divergence) would be silently ignored. ``apply_learning_rates`` rescales
each optimizer's base learning rate (and its scheduler's, keeping the schedule's position) to the option
file's value, and logs every change. ``newest_intact_state`` picks the state ``--auto_resume`` continues
from: the newest one that loads and whose network checkpoints of the same iteration load too.
"""
import glob
from os import path as osp
from typing import Callable, List, Optional, Sequence, Tuple

import torch

from ..checkpoints import CheckpointError, read_checkpoint
from .run_state import comparable_options, current_loader, option_changes, queue_state, rng_states, set_queue_state


def apply_learning_rates(optimizers: Sequence[torch.optim.Optimizer], schedulers: Sequence,
                         wanted: Sequence[Tuple[str, float]], log: Callable[[str], None]) -> List[str]:
    """``wanted``: (option key, base lr) per optimizer, in optimizer order. Returns the change messages."""
    changes = []
    for i, (optimizer, (key, lr)) in enumerate(zip(optimizers, wanted)):
        groups = optimizer.param_groups
        saved = groups[0].get('initial_lr', groups[0]['lr'])
        if saved <= 0 or abs(saved - lr) <= 1e-12 * max(abs(lr), 1.0):
            continue
        factor = lr / saved
        for group in groups:
            group['lr'] *= factor
            group['initial_lr'] = group.get('initial_lr', saved) * factor
        if i < len(schedulers) and hasattr(schedulers[i], 'base_lrs'):
            scheduler = schedulers[i]
            scheduler.base_lrs = [base * factor for base in scheduler.base_lrs]
            if hasattr(scheduler, '_last_lr'):
                scheduler._last_lr = [group['lr'] for group in groups]
        changes.append(f'train.{key}.lr changed at resume: {saved:g} -> {lr:g} (applied; the schedule continues '
                       f'from the saved iteration)')
    for message in changes:
        log(message)
    return changes


def resume_command(experiments_root: str, optimizer_key: str, lr: float) -> str:
    """The command that resumes this experiment with a lower learning rate (from BasicSR's copy of the option
    file in the experiment folder)."""
    copies = sorted(glob.glob(osp.join(experiments_root, '*.yml')))
    option_file = copies[0] if copies else '<the option file>'
    # a plain decimal: basicsr's --force_yml reads "5e-05" as a string, "0.00005" as a number
    lower = f'{lr / 2:.12f}'.rstrip('0').rstrip('.')
    return (f'python sdakd_basicsr/train.py -opt {option_file} --auto_resume '
            f'--force_yml train:{optimizer_key}:lr={lower}')


def state_extras(model) -> dict:
    """What the training state adds to basicsr's: every RNG, the data position, the training-pair queue and the
    options of the run (``run_state``)."""
    loader = current_loader()
    return {'rng': rng_states(), 'data_position': loader.position() if loader is not None else None,
            'queue': queue_state(model), 'options': comparable_options(model.opt)}


def finish_resume(model, state: dict, logger) -> None:
    """After basicsr restored optimizers and schedulers: the option file's learning rates, the GradScalers."""
    apply_learning_rates(model.optimizers, model.schedulers, model.optimizer_lrs, logger.info)
    model.precision.load_state(model.optimizers, state.get('grad_scalers'), logger.warning)


def restore_state_extras(model, state: dict, logger) -> None:
    """Put back what ``state_extras`` saved; compare the options (changes applied, listed or refused)."""
    log, warn = logger.info, logger.warning
    if state.get('options') is not None:
        applied, no_effect, refused = option_changes(state['options'], model.opt)
        if refused:
            raise ValueError('resume: these options differ from the run being resumed and would change what it '
                             'trains; restore them or start a new experiment (another name):\n  '
                             + '\n  '.join(refused))
        for line in applied:
            log(f'resume: applied option change {line}')
        for line in no_effect:
            log(f'resume: option change without effect on training: {line}')
    set_queue_state(model, state.get('queue'))
    loader = current_loader()
    if state.get('rng') is None or state.get('data_position') is None:
        warn('resume: this training state holds no random state or data position (written by another version); '
             'the run continues, but not exactly as if it had never stopped')
    elif loader is not None:
        loader.resume_at(state['data_position'], state['rng'])


STATE_KEYS = ('epoch', 'iter', 'optimizers', 'schedulers')  # what basicsr's resume_training reads


def read_training_state(path: str, what: str = 'path.resume_state') -> dict:
    """A training state, or a ``CheckpointError`` naming the file and what is wrong with it."""
    state = read_checkpoint(path, what)
    missing = [k for k in STATE_KEYS if k not in state]
    if missing:
        raise CheckpointError(f'{what}: {path} is not a training state (no {missing}; its entries: '
                              f'{sorted(map(str, state))[:6]}): network weights go in path.pretrain_network_*')
    return state


# What --auto_resume skipped in this process, and why: printed at once (the run's log file does not exist yet) and
# written again into the log by the model once BasicSR has opened it (``log_resume_notes``).
RESUME_NOTES: List[str] = []


def log_resume_notes(log: Callable[[str], None]) -> None:
    """Repeat the notes of ``newest_intact_state`` into the run's log (once)."""
    for note in RESUME_NOTES:
        log(note)
    RESUME_NOTES.clear()


def newest_intact_state(state_dir: str, log: Callable[[str], None]) -> Optional[Tuple[str, dict]]:
    """(path, state) of the newest ``<iter>.state`` in ``state_dir`` that loads and whose ``net_*_<iter>.pth``
    in the sibling ``models/`` folder all load; damaged newer ones are skipped with a warning (``log``).
    None when the folder holds no state; a ``CheckpointError`` listing each problem when none is intact."""
    states = []
    for name in glob.glob(osp.join(state_dir, '*.state')):
        try:
            states.append((int(float(osp.basename(name)[:-len('.state')])), name))
        except ValueError:
            continue
    problems = []
    for it, path in sorted(states, reverse=True):
        try:
            state = read_training_state(path, 'auto_resume')
            for net_file in sorted(glob.glob(osp.join(osp.dirname(state_dir), 'models', f'net_*_{it}.pth'))):
                read_checkpoint(net_file, 'auto_resume')
        except (CheckpointError, OSError) as err:
            problems.append(str(err))
            note = f'auto_resume: SKIPPED the training state of iteration {it}: {err}'
            RESUME_NOTES.append(note)
            log(note)
            continue
        if problems:
            note = f'auto_resume: resuming from iteration {it} ({path}), the newest intact training state'
            RESUME_NOTES.append(note)
            log(note)
        return path, state
    if problems:
        raise CheckpointError('auto_resume: no intact training state in ' + state_dir + ':\n  ' + '\n  '.join(problems))
    return None
