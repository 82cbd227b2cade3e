"""The SDAKD study: does the student discriminator help at a scale this CPU can run? (docs/results.md)

The protocol is fixed here, before any result is seen, and printed in the report:

- teacher: the real Real-ESRGAN x4plus generator; student: RRDBNet at width 1/4 (the demo's), D_S at width
  1/4, D_T = UNetDiscriminatorSN 64 warmed up against the teacher (stage 0, shared);
- data: the demo's training tiles (bicubic x4), 64x64 GT crops, batch 4, flips and rotations, with the teacher
  cache (the teacher's output and features computed once per tile);
- stage 1 (channel-selection init + output distillation, the demo's) is shared by every arm and seed, so the
  arms start from one student; stages 2 and 3 have equal budgets in every arm and run once per seed;
- losses: the demo's (L1 0.1, output distillation 1, FMD 1 where the arm keeps it), adversarial weight 0.1
  for each discriminator (Real-ESRGAN's), Adam 1e-4, EMA 0.99;
- measures on the held-out images (never trained on): PSNR/SSIM vs GT, PSNR vs the teacher (RGB and Y),
  high-frequency energy over the teacher's, NIQE; D logits and the RMS gradient each adversarial term sends
  to the student, over iterations.

Verdict rules (``verdicts``): two arms differ "beyond the seed spread" when their means differ by more than
the sum of their standard deviations over seeds; otherwise "not separated at this scale".
"""
import copy
from dataclasses import dataclass
from os import path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import demo

STUDY_GT_SIZE = 64
STUDY_BATCH = 4
ADV_WEIGHT = 0.1
CACHE_FILE = osp.join(demo.DATA_DIR, 'train', 'teacher_cache_study.pt')
# the study's base files: the demo's stage files as they were when the study was run (options/demo moved on)
OPTIONS_DIR = osp.join('options', 'study')


@dataclass(frozen=True)
class Arm:
    name: str
    stage2: str                  # the stage-2 variant (shared by arms that name the same one)
    stage3_adversaries: Tuple[str, ...]
    fmd: bool = True
    summary: str = ''


# stage-2 variants: which discriminators act, and FMD on/off
STAGE2_VARIANTS: Dict[str, Tuple[Tuple[str, ...], bool]] = {
    'ds': (('student', ), True),
    'dt': (('teacher', ), True),
    'ds_nofmd': (('student', ), False),
    'noadv': ((), True),
}

ARMS: Dict[str, Arm] = {a.name: a for a in (
    Arm('sdakd', 'ds', ('student', 'teacher'), summary='SDAKD: D_S in stage 2, D_S + D_T in stage 3, FMD'),
    Arm('teacher_d_only', 'dt', ('teacher', ), summary='no student discriminator: D_T alone in stages 2 and 3'),
    Arm('student_d_only', 'ds', ('student', ), summary='no teacher discriminator: D_S alone in stages 2 and 3'),
    Arm('no_fmd', 'ds_nofmd', ('student', 'teacher'), fmd=False, summary='SDAKD without feature-map distillation'),
    Arm('kd_only', 'noadv', (), summary='no discriminator at all: L1 + output distillation + FMD'),
    Arm('stage2_no_adv', 'noadv', ('student', 'teacher'),
        summary='the other reading: stage 2 = L_sup + FMD without adversarial term, stage 3 as SDAKD'),
)}


@dataclass
class Run:
    name: str
    stage: int
    opt: dict
    iters: int
    after: Tuple[str, ...] = ()


def _experiment(name: str, file: str) -> str:
    return f'experiments/{name}/models/{file}'


def _study_settings(opt: dict, taps: Sequence[str], cache: bool = True) -> dict:
    """The protocol's common settings on one demo stage file (``taps``: stage 3's, in every stage)."""
    opt = copy.deepcopy(opt)
    train_set = opt['datasets']['train']
    train_set.update(gt_size=STUDY_GT_SIZE, batch_size_per_gpu=STUDY_BATCH)
    opt['sdakd']['log_grad_norms'] = opt['sdakd']['stage'] in (2, 3)
    if cache:
        train_set.update(type='TeacherCachedPairedDataset', teacher_cache=CACHE_FILE)
    sd = opt['sdakd']
    sd['taps'] = list(taps)  # every stage: the cache's taps
    opt['logger'].update(print_freq=5, save_checkpoint_freq=100)
    for key in ('gan_opt', 'gan_teacher_opt'):
        if key in opt['train']:
            opt['train'][key]['loss_weight'] = ADV_WEIGHT
    return opt


def _set_adversaries(opt: dict, roles: Sequence[str], donor: dict, d_teacher_from: str,
                     d_student_from: Optional[str]) -> None:
    """Make ``opt`` train exactly ``roles``: networks, losses, optimizers and starting checkpoints."""
    train, path = opt['train'], opt['path']
    opt['sdakd']['adversarial'] = list(roles)
    for role, net_key, loss_key, optim_key in (('student', 'network_d', 'gan_opt', 'optim_d'),
                                               ('teacher', 'network_d_teacher', 'gan_teacher_opt',
                                                'optim_d_teacher')):
        if role in roles:
            opt[net_key] = copy.deepcopy(donor[net_key])
            train[loss_key] = copy.deepcopy(donor['train'][loss_key])
            train[loss_key]['loss_weight'] = ADV_WEIGHT
            train[optim_key] = copy.deepcopy(donor['train'][optim_key])
            source = d_teacher_from if role == 'teacher' else d_student_from
            path[f'pretrain_{net_key}'] = source
        else:
            for key in (net_key, ):
                opt.pop(key, None)
            train.pop(loss_key, None)
            train.pop(optim_key, None)
            path.pop(f'pretrain_{net_key}', None)


def _set_fmd(opt: dict, fmd: bool, donor: dict, adapters_from: Optional[str]) -> None:
    if fmd:
        opt['network_adapters'] = copy.deepcopy(donor['network_adapters'])
        opt['train']['fmd_opt'] = copy.deepcopy(donor['train']['fmd_opt'])
        opt['path']['pretrain_network_adapters'] = adapters_from
    else:
        opt.pop('network_adapters', None)
        opt['train'].pop('fmd_opt', None)
        opt['path'].pop('pretrain_network_adapters', None)


def plan(stages: Dict[int, dict], arms: Sequence[str], seeds: Sequence[int], iters: Dict[int, int]) -> List[Run]:
    """Every run of the study in dependency order: stage 0 and stage 1 once, then per seed the stage-2
    variants the arms need and each arm's stage 3."""
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise KeyError(f'unknown study arm(s) {unknown}; choose from {sorted(ARMS)}')
    donor = stages[3]
    taps = donor['sdakd']['taps']
    runs: List[Run] = []
    s0 = _study_settings(stages[0], taps)
    s0['name'] = 'study_stage0'
    runs.append(Run(s0['name'], 0, s0, iters[0]))
    s1 = _study_settings(stages[1], taps)
    s1['name'] = 'study_stage1'
    runs.append(Run(s1['name'], 1, s1, iters[1]))
    d_teacher_warm = _experiment(s0['name'], 'net_d_teacher_latest.pth')
    student_s1 = _experiment(s1['name'], 'net_g_latest.pth')
    for seed in seeds:
        variants_done: Dict[str, Run] = {}
        for arm_name in arms:
            arm = ARMS[arm_name]
            if arm.stage2 not in variants_done:
                roles, fmd = STAGE2_VARIANTS[arm.stage2]
                s2 = _study_settings(stages[2], taps)
                s2['name'] = f'study_s{seed}_stage2_{arm.stage2}'
                s2['manual_seed'] = 100 * seed + 2
                s2['path']['pretrain_network_g'] = student_s1
                s2['path']['param_key_g'] = 'params_ema'
                _set_adversaries(s2, roles, donor, d_teacher_warm, None)
                _set_fmd(s2, fmd, donor, None)
                variants_done[arm.stage2] = Run(s2['name'], 2, s2, iters[2], (s0['name'], s1['name']))
                runs.append(variants_done[arm.stage2])
            s2_run = variants_done[arm.stage2]
            s2_roles, s2_fmd = STAGE2_VARIANTS[arm.stage2]
            s3 = _study_settings(stages[3], taps)
            s3['name'] = f'study_s{seed}_stage3_{arm.name}'
            s3['manual_seed'] = 100 * seed + 3
            s3['path']['pretrain_network_g'] = _experiment(s2_run.name, 'net_g_latest.pth')
            s3['path']['param_key_g'] = 'params_ema'
            d_teacher_from = (_experiment(s2_run.name, 'net_d_teacher_latest.pth') if 'teacher' in s2_roles
                              else d_teacher_warm)
            d_student_from = _experiment(s2_run.name, 'net_d_latest.pth') if 'student' in s2_roles else None
            _set_adversaries(s3, arm.stage3_adversaries, donor, d_teacher_from, d_student_from)
            _set_fmd(s3, arm.fmd, donor, _experiment(s2_run.name, 'net_adapters_latest.pth') if s2_fmd else None)
            runs.append(Run(s3['name'], 3, s3, iters[3], (s2_run.name, s0['name'])))
    return runs


def final_run(arm: str, seed: int) -> str:
    return f'study_s{seed}_stage3_{arm}'


# ---------------------------------------------------------------------------------------------- analysis
def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std()) if len(v) > 1 else 0.0


def compare(a: Sequence[float], b: Sequence[float], higher_is_better: bool) -> str:
    """'better' / 'worse' (a against b) beyond the seed spread, else 'not separated'."""
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    if not (np.isfinite(ma) and np.isfinite(mb)):
        return 'n/a'
    if abs(ma - mb) <= sa + sb:
        return 'not separated'
    return 'better' if (ma > mb) == higher_is_better else 'worse'


def part_mean(series: List[tuple], fraction: float = 0.25, last: bool = True) -> float:
    """Mean of the last (or first) ``fraction`` of a logged series [(iteration, value)]."""
    if not series:
        return float('nan')
    values = [v for _, v in series]
    k = max(1, int(round(len(values) * fraction)))
    return float(np.mean(values[-k:] if last else values[:k]))


def tail_mean(series: List[tuple], fraction: float = 0.25) -> float:
    return part_mean(series, fraction, last=True)


def head_mean(series: List[tuple], fraction: float = 0.25) -> float:
    return part_mean(series, fraction, last=False)


def margin_series(series: Dict[str, List[tuple]], tag: str) -> List[tuple]:
    """D's real-minus-fake mean logit over iterations (its confidence that it tells them apart)."""
    real, fake = dict(series.get(f'out_{tag}_real', [])), dict(series.get(f'out_{tag}_fake', []))
    return [(it, real[it] - fake[it]) for it in sorted(real) if it in fake]
