"""The latency-versus-fidelity front: which students there are, how each starts, how it is trained at an equal
wall-clock budget with the demo's stage-1 recipe, and how the results are summarised (tools/front.py runs it).

The recipe is the demo's stage 1 (``options/demo/sdakd_demo_stage1.yml``: output distillation L1 on the teacher
cache + 0.1 GT L1, EMA 0.99) with the student replaced; it is the part of the demo that sets fidelity (the demo's
stages 2-3 are short adversarial polish, studied separately in the study). Every arm gets the same wall-clock
budget: a short calibration run measures its seconds per iteration under the same conditions (same threads,
same neighbour process), and the arm then trains for budget / (s/it) iterations.
"""
import copy
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ..archs.generator_call import REALESRGAN_X4PLUS
from .demo import COMPACT_INIT_FILE as ANIME_COMPACT


@dataclass(frozen=True)
class Arm:
    """One student of the front: its network, how it starts, and the seeds it is trained with."""
    name: str
    network: dict
    init: str = 'scratch'  # scratch | channel-selection (RRDBNet of the teacher's depth) | a checkpoint path
    seeds: tuple = (0, )
    lr: float = 5e-4

    @property
    def slug(self) -> str:
        return re.sub(r'[^a-z0-9]+', '_', self.name.lower()).strip('_')


def compact(num_feat: int, num_conv: int) -> dict:
    return dict(type='SRVGGNetCompact', num_in_ch=3, num_out_ch=3, num_feat=num_feat, num_conv=num_conv, upscale=4,
                act_type='prelu')


ARMS: List[Arm] = [
    Arm('RRDBNet 1/2', dict(REALESRGAN_X4PLUS, num_feat=32, num_grow_ch=16), 'channel-selection'),
    Arm('RRDBNet 1/4', dict(REALESRGAN_X4PLUS, num_feat=16, num_grow_ch=8), 'channel-selection'),
    Arm('RRDBNet 1/8', dict(REALESRGAN_X4PLUS, num_feat=8, num_grow_ch=4), 'channel-selection'),
    Arm('RRDBNet 32/6', dict(REALESRGAN_X4PLUS, num_feat=32, num_block=6, num_grow_ch=16)),
    Arm('SRVGGNetCompact 64x32', compact(64, 32), seeds=(0, 1, 2)),
    Arm('SRVGGNetCompact 64x16', compact(64, 16)),
    Arm('SRVGGNetCompact 64x16 from animevideov3', compact(64, 16), ANIME_COMPACT),
    Arm('SRVGGNetCompact 32x16', compact(32, 16)),
]


def arms_named(names: Optional[List[str]]) -> List[Arm]:
    if not names:
        return list(ARMS)
    by_name = {a.name: a for a in ARMS} | {a.slug: a for a in ARMS}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise KeyError(f'--arms: unknown {unknown}; choose from {[a.slug for a in ARMS]}')
    return [by_name[n] for n in names]


def arm_options(stage1: dict, arm: Arm, seed: int, iters: int, name: str) -> dict:
    """The demo's stage-1 option dict with ``arm``'s student, start, seed and length."""
    opt = copy.deepcopy(stage1)
    opt['name'] = name
    opt['manual_seed'] = seed
    opt['network_g'] = dict(arm.network)
    opt['sdakd']['init_student_from_teacher'] = arm.init == 'channel-selection'
    opt['path']['pretrain_network_g'] = None if arm.init in ('scratch', 'channel-selection') else arm.init
    if opt['path']['pretrain_network_g']:
        opt['path']['param_key_g'] = 'params_ema'  # converted and released models hold only params_ema
    train = opt['train']
    train['optim_g']['lr'] = arm.lr
    train['total_iter'] = iters
    train['scheduler']['milestones'] = [iters * 10]
    opt['logger'].update(print_freq=max(1, min(10, iters // 2)), save_checkpoint_freq=iters)
    return opt


def seconds_per_iteration(log_text: str) -> Optional[float]:
    """BasicSR's running mean iteration time (``time (data): 0.170 (0.003)``), last logged value."""
    values = re.findall(r'time \(data\): ([0-9.]+) \(', log_text)
    return float(values[-1]) if values else None


@dataclass
class ArmResult:
    arm: Arm
    iters: Dict[int, int] = field(default_factory=dict)          # seed -> iterations trained
    seconds: Dict[int, float] = field(default_factory=dict)      # seed -> training wall time
    quality: Dict[int, Dict[str, dict]] = field(default_factory=dict)  # seed -> {'heldout'|'other': metrics}
