"""Baselines and ablations as transforms of a set of SDAKD stage option dicts ({stage: opt}).

The same transforms write the full-scale files (``scripts/make_ablation_options.py`` -> ``options/baselines/``)
and build the methods of the comparison harness on the demo data (``python -m sdakd_basicsr.tools.compare``).
Every transformed stage gets its own experiment name, and the hand-off paths follow the new names.

| method | what changes |
|---|---|
| sdakd | nothing (the reference) |
| scratch | (a) no teacher at all: Real-ESRGAN's recipe, an L1/perceptual stage then a GAN stage with D_S |
| teacher_d_only | (b) no student discriminator: stages 2 and 3 train against D_T only (what the paper argues against) |
| no_fmd | (c) no feature-map distillation (no adapters) |
| no_stage1 | (d) stage 2 starts from a random student |
| conv1x1 | (e) a single linear 1x1 adapter instead of the MLP |
| student_d_only | (f) stage 3 without the teacher discriminator |
"""
import copy
from typing import Callable, Dict, List

Stages = Dict[int, dict]


def _drop(opt: dict, *keys: str) -> None:
    """Remove dotted keys (``train.fmd_opt``) where present."""
    for key in keys:
        node = opt
        *parents, leaf = key.split('.')
        for p in parents:
            node = node.get(p) or {}
        node.pop(leaf, None)


def _without_fmd(opt: dict) -> None:
    _drop(opt, 'train.fmd_opt', 'network_adapters', 'path.pretrain_network_adapters', 'sdakd.taps',
          'sdakd.student_taps')


def _without_teacher(opt: dict) -> None:
    _without_fmd(opt)
    _drop(opt, 'sdakd.teacher_g', 'train.kd_opt', 'sdakd.init_student_from_teacher')


def _with_teacher_d_from(opt: dict, donor: dict) -> None:
    """Give ``opt`` the teacher discriminator of ``donor`` (network, loss, optimizer, checkpoint)."""
    opt['network_d_teacher'] = copy.deepcopy(donor['network_d_teacher'])
    opt['train']['gan_teacher_opt'] = copy.deepcopy(donor['train']['gan_teacher_opt'])
    opt['train']['optim_d_teacher'] = copy.deepcopy(donor['train']['optim_d_teacher'])
    for key in ('pretrain_network_d_teacher', 'param_key_d_teacher'):
        if key in donor['path']:
            opt['path'][key] = donor['path'][key]


def _without_student_d(opt: dict) -> None:
    _drop(opt, 'network_d', 'train.gan_opt', 'train.optim_d', 'path.pretrain_network_d')


def _without_teacher_d(opt: dict) -> None:
    _drop(opt, 'network_d_teacher', 'train.gan_teacher_opt', 'train.optim_d_teacher',
          'path.pretrain_network_d_teacher', 'path.param_key_d_teacher')


def sdakd(stages: Stages) -> Stages:
    return stages


def scratch(stages: Stages) -> Stages:
    out = {1: stages[1], 2: stages[2]}
    for opt in out.values():
        _without_teacher(opt)
    out[2]['sdakd']['adversarial'] = ['student']
    return out


def teacher_d_only(stages: Stages) -> Stages:
    donor = stages[3]
    for s in (2, 3):
        _without_student_d(stages[s])
        stages[s]['sdakd']['adversarial'] = ['teacher']
    _with_teacher_d_from(stages[2], donor)
    stages[3]['path']['pretrain_network_d_teacher'] = _models(stages[2]['name']) + '/net_d_teacher_latest.pth'
    return stages


def no_fmd(stages: Stages) -> Stages:
    for s in (2, 3):
        _without_fmd(stages[s])
    return stages


def no_stage1(stages: Stages) -> Stages:
    stages.pop(1)
    stages[2]['path']['pretrain_network_g'] = None
    return stages


def conv1x1(stages: Stages) -> Stages:
    for s in (2, 3):
        stages[s]['network_adapters']['kind'] = 'conv1x1'
    return stages


def student_d_only(stages: Stages) -> Stages:
    _without_teacher_d(stages[3])
    stages[3]['sdakd']['adversarial'] = ['student']
    return stages


METHODS: Dict[str, Callable[[Stages], Stages]] = {
    'sdakd': sdakd, 'scratch': scratch, 'teacher_d_only': teacher_d_only, 'no_fmd': no_fmd,
    'no_stage1': no_stage1, 'conv1x1': conv1x1, 'student_d_only': student_d_only}


def _models(name: str) -> str:
    return f'experiments/{name}/models'


def apply_method(method: str, stages: Stages) -> Stages:
    """The stages ``method`` must run itself (stages 1-3 in; a warm-up stage 0 is left to the caller).

    Stages before the first one the method changes (or drops) are shared with SDAKD's own runs and left out;
    every returned stage gets the suffix ``_<method>`` and its hand-off paths point at the renamed runs.
    """
    if method not in METHODS:
        raise KeyError(f'unknown method {method!r}; choose from {sorted(METHODS)}')
    out = METHODS[method](copy.deepcopy(stages))
    differs = [s for s in stages if s not in out or out[s] != stages[s]]
    if not differs:
        return out
    first = min(differs)
    out = {s: opt for s, opt in out.items() if s >= first}
    rename_runs(out, lambda name: f'{name}_{method}')
    return out


def rename_runs(stages: Stages, new_name: Callable[[str], str]) -> None:
    """Give every stage the experiment name ``new_name(name)`` and point the hand-off paths between them
    (``experiments/<name>/...``) at the renamed runs; in place."""
    renamed = {opt['name']: new_name(opt['name']) for opt in stages.values()}
    for opt in stages.values():
        opt['name'] = renamed[opt['name']]
        for key, value in list(opt['path'].items()):
            if isinstance(value, str):
                for old, new in renamed.items():
                    value = value.replace(f'experiments/{old}/', f'experiments/{new}/')
                opt['path'][key] = value


def stage_iterations(method_stages: List[int], budget: Dict[int, int]) -> Dict[int, int]:
    """Equal budgets: a stage a method drops gives its iterations to the method's next stage (or the last)."""
    iters = {s: 0 for s in method_stages}
    for stage, n in sorted(budget.items()):
        later = [s for s in method_stages if s >= stage]
        iters[later[0] if later else method_stages[-1]] += n
    return iters
