"""The anchors study: does SDAKD's own machinery beat the community's teacher-as-target recipes? (docs/results.md)

The protocol is fixed here, before any result is seen, and printed in the report:

- teacher: the real Real-ESRGAN x4plus generator (bf16 where the CPU has it natively, as the demo); student: the
  demo's compact SRVGGNetCompact 64x16; D_S: UNet at the capacity-matched width 12; D_T: UNet 64 warmed up against
  the teacher (stage 0, shared);
- data: the demo's training tiles with its teacher cache (clean LR with probability 0.65, else one of two seeded
  Real-ESRGAN degradations), 128x128 GT crops, batch 4, flips and rotations;
- a shared start: the demo's own stages 0 and 1 (``make demo``'s, its default iterations: D_T warm-up; output
  distillation + GT L1 0.3 from realesr-animevideov3); then each arm's tail, per seed, for an equal wall-clock
  budget: its iterations are the budget over its own seconds per iteration, measured by a probe run of every tail
  phase on this machine under the study's own conditions (two runs at a time, one thread each). Two-phase arms
  split the budget in half;
- arms (the tails):
  (a) ``kd``: teacher-as-target output distillation (traiNNer-redux's teacher distillation): L1 to the teacher 1 +
      L1 to GT 0.3;
  (b) ``eco``: ECO-style target blending, hr_only (the LR stays the real input): L1 1.3 to (1 - s) GT + s teacher
      output, s from 0 to 1 over the tail;
  (c) ``gan_dt``: a Real-ESRGAN-style GAN fine-tune with the teacher discriminator alone: (a)'s losses + D_T
      (trained, from the stage-0 warm-up) at Real-ESRGAN's weight 0.1;
  (d) ``sdakd``: SDAKD as the paper: stage 2 (D_S + feature-map distillation) then stage 3 (D_S + D_T + FMD), with
      (a)'s losses;
  (e) ``sdakd_texture``: (d) + the texture terms of ``TEXTURE`` + D_T feature matching (and LDL's artifact guard in
      stage 3);
  (f) ``texture``: (a)'s losses + the texture terms of ``TEXTURE``, no discriminator;
  every adversarial phase with the cheaper-adversary settings of ``CHEAP_ADVERSARY`` (a crop of the images, D
  steps every other iteration), the same in every arm that has a discriminator;
- measures, on the held-out images (never trained on) and the other photo(s), each on clean bicubic and on
  seeded Real-ESRGAN-degraded LR: PSNR against the teacher (its margin over bicubic's), high-frequency energy over
  the teacher's, NIQE, chroma PSNR against the teacher, PSNR against GT; mean and standard deviation over seeds.

Verdict rules (``verdicts`` / ``winner``), fixed before the run:

- "look" is NIQE (lower is better) and |HF ratio - 1| (lower is better), on the held-out images, clean LR; two arms
  differ on a measure "beyond the seed spread" when their means differ by more than the sum of their standard
  deviations over seeds;
- arm X beats arm Y in look at equal fidelity when X is better beyond the seed spread on at least one look measure,
  not worse beyond it on the other, and its PSNR against the teacher (clean LR) is at most 0.3 dB below Y's;
- the demo's recipe is the arm whose mean over seeds meets the most of the demo's targets (clean: fidelity,
  naturalness, sharpness, colour; degraded: fidelity, restoration; held-out images), ties broken by the lower
  clean NIQE.
"""
import copy
from dataclasses import dataclass
from os import path as osp
from typing import Dict, List, Optional, Sequence, Tuple

from . import demo
from .study import Run, compare, mean_std

ARM_NAMES = ('kd', 'eco', 'gan_dt', 'sdakd', 'sdakd_texture', 'texture')
ADV_WEIGHT = 0.1
GT_WEIGHT, KD_WEIGHT = 0.3, 1.0  # the demo's stage-1 weights: (a)'s losses
# the texture terms of arms (e) and (f): the amplitude spectrum above a quarter of Nyquist and patch statistics, both
# against the teacher's output. Chosen before the study on training images (coffee, chelsea; 300-iteration tails from
# the demo's stage 1): wavelet-band L1 left NIQE where it was (it still pays for misplaced texture), the Fourier and
# patch terms raised the HF ratio from 0.58 to 0.79-0.90 and lowered NIQE by 0.5-1.1 at 0.3-0.7 dB of fidelity;
# weight 3 each sits between the measured 1 and 5 (docs/results.md, "Anchors study")
TEXTURE = {
    'hf_opt': {'type': 'FourierAmplitudeLoss', 'loss_weight': 3.0, 'min_frequency': 0.25, 'target': 'teacher'},
    'patch_opt': {'type': 'PatchSWDLoss', 'loss_weight': 3.0, 'patch_size': 7, 'num_projections': 32,
                  'scales': [1, 2], 'stride': 2, 'target': 'teacher'},
}
D_FEAT = {'type': 'FeatureMatchLoss', 'loss_weight': 0.05, 'layers': None}
LDL = {'type': 'ArtifactGuardLoss', 'loss_weight': 1.0, 'target': 'teacher'}
CHEAP_ADVERSARY = {'d_crop_size': 64, 'd_update_every': 2}
FIDELITY_TOLERANCE_DB = 0.3
PREFIX = 'anchors'
# the shared start: the demo's stage 0 (D_T warm-up) and compact stage 1, as the compact SDAKD demo trains them
# (`make demo` shares its stage 1)
START_RECIPE = 'compact_sdakd'
START_G = osp.join(demo.experiment(1, START_RECIPE), 'models', 'net_g_latest.pth')
D_TEACHER = osp.join(demo.experiment(0, START_RECIPE), 'models', 'net_d_teacher_latest.pth')


@dataclass(frozen=True)
class Phase:
    """One training run of an arm's tail: the demo stage file it starts from and what it changes."""
    key: str           # shared by arms that run the same phase (calibrated once)
    stage_file: int    # 1, 2 or 3: the demo's compact stage file
    adversarial: Tuple[str, ...]
    fmd: bool = False
    texture: bool = False
    d_feat: bool = False
    ldl: bool = False
    eco: bool = False


@dataclass(frozen=True)
class Arm:
    name: str
    phases: Tuple[Phase, ...]
    summary: str


_D2 = Phase('sdakd_s2', 2, ('student', ), fmd=True)
_D3 = Phase('sdakd_s3', 3, ('student', 'teacher'), fmd=True)
ARMS: Dict[str, Arm] = {a.name: a for a in (
    Arm('kd', (Phase('kd', 1, ()), ), '(a) teacher-as-target output distillation: L1 teacher 1 + L1 GT 0.3'),
    Arm('eco', (Phase('eco', 1, (), eco=True), ), '(b) ECO-style target blending GT -> teacher, hr_only'),
    Arm('gan_dt', (Phase('gan_dt', 3, ('teacher', )), ), '(c) GAN fine-tune with the teacher discriminator alone'),
    Arm('sdakd', (_D2, _D3), '(d) SDAKD: D_S + FMD, then D_S + D_T + FMD'),
    Arm('sdakd_texture', (Phase('sdakd_texture_s2', 2, ('student', ), fmd=True, texture=True, d_feat=True),
                          Phase('sdakd_texture_s3', 3, ('student', 'teacher'), fmd=True, texture=True, d_feat=True,
                                ldl=True)),
        '(e) SDAKD + texture terms + D_T feature matching (+ LDL in stage 3)'),
    Arm('texture', (Phase('texture', 1, (), texture=True), ), '(f) texture terms without discriminators'),
)}


def phases(arms: Sequence[str]) -> Dict[str, Phase]:
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise KeyError(f'unknown arm(s) {unknown}; choose from {", ".join(ARMS)}')
    return {p.key: p for a in arms for p in ARMS[a].phases}


def _models(run: str, file: str) -> str:
    return f'experiments/{run}/models/{file}'


def phase_options(stages: Dict[int, dict], phase: Phase, name: str, seed: int, start_g: str,
                  d_teacher_from: str, previous: Optional[Tuple[str, Phase]] = None) -> dict:
    """The option dict of one tail phase, from the demo's compact stage files (``stages``: 1-3); ``previous``: the
    arm's previous phase (its run name and phase), whose trained discriminators and adapters this one continues."""
    donor = stages[3]
    opt = copy.deepcopy(stages[phase.stage_file])
    opt['name'], opt['manual_seed'] = name, 1000 + 10 * seed + phase.stage_file
    train, path, sd = opt['train'], opt['path'], opt['sdakd']
    train['pixel_opt']['loss_weight'] = GT_WEIGHT
    train['kd_opt'] = {'type': 'L1Loss', 'loss_weight': KD_WEIGHT}
    train['optim_g']['lr'] = 1e-4
    path.update(pretrain_network_g=start_g, param_key_g='params_ema')
    sd['adversarial'] = list(phase.adversarial)
    sd['log_grad_norms'] = False
    for role, net_key, loss_key, optim_key in (('student', 'network_d', 'gan_opt', 'optim_d'),
                                               ('teacher', 'network_d_teacher', 'gan_teacher_opt',
                                                'optim_d_teacher')):
        needed = role in phase.adversarial or (role == 'teacher' and phase.d_feat)
        opt.pop(net_key, None)
        for key in (loss_key, optim_key):
            train.pop(key, None)
        path.pop(f'pretrain_{net_key}', None)
        if not needed:
            continue
        opt[net_key] = copy.deepcopy(donor[net_key])
        if role in phase.adversarial:
            train[loss_key] = dict(donor['train'][loss_key], loss_weight=ADV_WEIGHT)
            train[optim_key] = copy.deepcopy(donor['train'][optim_key])
        source = d_teacher_from if role == 'teacher' else None
        if previous and role in previous[1].adversarial:
            source = _models(previous[0], f'net_{"d" if role == "student" else "d_teacher"}_latest.pth')
        path[f'pretrain_{net_key}'] = source
    if phase.fmd:
        opt['network_adapters'] = copy.deepcopy(donor['network_adapters'])
        train['fmd_opt'] = copy.deepcopy(donor['train']['fmd_opt'])
        path['pretrain_network_adapters'] = (_models(previous[0], 'net_adapters_latest.pth')
                                             if previous and previous[1].fmd else None)
        sd['taps'] = list(donor['sdakd']['taps'])
    else:
        opt.pop('network_adapters', None)
        train.pop('fmd_opt', None)
        path.pop('pretrain_network_adapters', None)
    if phase.adversarial or phase.d_feat:
        train.update(CHEAP_ADVERSARY)
    if phase.texture:
        train.update(copy.deepcopy(TEXTURE))
    if phase.d_feat:
        train['d_feat_opt'] = dict(D_FEAT)
    if phase.ldl:
        train['ldl_opt'] = dict(LDL)
    if phase.eco:
        train.pop('kd_opt')
        train.pop('pixel_opt')
        train['blend_opt'] = {'type': 'L1Loss', 'loss_weight': GT_WEIGHT + KD_WEIGHT, 'teacher_share': [0.0, 1.0]}
    opt['logger'].update(print_freq=5, save_checkpoint_freq=10**6)
    return opt


def probe_runs(stages: Dict[int, dict], arms: Sequence[str], iters: int) -> List[Run]:
    """One short run of every tail phase (seed 0), from the shared start: their seconds per iteration."""
    runs = []
    for key, phase in phases(arms).items():
        opt = phase_options(stages, phase, f'{PREFIX}_probe_{key}', 0, START_G, D_TEACHER)
        runs.append(Run(opt['name'], phase.stage_file, opt, iters))
    return runs


def tail_iterations(seconds_per_iter: Dict[str, float], budget_s: float, arms: Sequence[str]) -> Dict[str, int]:
    """{phase key: iterations} so that every arm's tail takes ``budget_s`` (two-phase arms: half each)."""
    out = {}
    for arm in arms:
        share = budget_s / len(ARMS[arm].phases)
        for phase in ARMS[arm].phases:
            out[phase.key] = max(1, int(round(share / seconds_per_iter[phase.key])))
    return out


def run_name(arm: str, seed: int, phase: Phase, budget_s: float) -> str:
    """The experiment name of one phase of an arm's tail at one budget (two-phase arms: suffixed by the stage file);
    the budget is in the name so that studies at different budgets keep their runs apart."""
    two_phase = len(ARMS[arm].phases) > 1
    return f'{PREFIX}_b{budget_s:g}_s{seed}_{arm}' + (f'_{phase.stage_file}' if two_phase else '')


def final_run(arm: str, seed: int, budget_s: float) -> str:
    return run_name(arm, seed, ARMS[arm].phases[-1], budget_s)


def plan(stages: Dict[int, dict], arms: Sequence[str], seeds: Sequence[int], iterations: Dict[str, int],
         budget_s: float) -> List[Run]:
    """Every tail run, per seed and arm, in dependency order (after the shared runs)."""
    runs: List[Run] = []
    for seed in seeds:
        for arm in arms:
            previous: Optional[Tuple[str, Phase]] = None
            for phase in ARMS[arm].phases:
                name = run_name(arm, seed, phase, budget_s)
                g_from = _models(previous[0], 'net_g_latest.pth') if previous else START_G
                opt = phase_options(stages, phase, name, seed, g_from, D_TEACHER, previous)
                after = (previous[0], ) if previous else ()
                runs.append(Run(name, phase.stage_file, opt, iterations[phase.key], after))
                previous = (name, phase)
    return runs


# ---------------------------------------------------------------------------------------------- verdicts
LOOK = (('niqe', 'NIQE', lambda v: v), ('hf_ratio', '|HF ratio - 1|', lambda v: abs(v - 1)))


def beats(x: Dict[str, List[float]], y: Dict[str, List[float]]) -> Tuple[bool, str]:
    """(X beats Y in look at equal fidelity, why): the rule of the module docstring. ``x``/``y``: {metric: per-seed
    values} with 'niqe', 'hf_ratio', 'psnr_teacher' (held-out, clean LR)."""
    verdicts = {}
    for key, label, f in LOOK:
        verdicts[label] = compare([f(v) for v in x[key]], [f(v) for v in y[key]], higher_is_better=False)
    fid_gap = mean_std(x['psnr_teacher'])[0] - mean_std(y['psnr_teacher'])[0]
    better = [k for k, v in verdicts.items() if v == 'better']
    worse = [k for k, v in verdicts.items() if v == 'worse']
    ok = bool(better) and not worse and fid_gap >= -FIDELITY_TOLERANCE_DB
    why = (', '.join(f'{k}: {v}' for k, v in verdicts.items()) + f'; fidelity {fid_gap:+.2f} dB')
    return ok, why


def winner(scores: Dict[str, Tuple[int, float]]) -> str:
    """The arm meeting the most targets, ties broken by the lower clean NIQE. ``scores``: {arm: (met, niqe)}."""
    return sorted(scores, key=lambda a: (-scores[a][0], scores[a][1]))[0]


OUT_DIR = osp.join('experiments', 'anchors_study')
