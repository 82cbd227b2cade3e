"""The teacher side of SDAKD (the "distiller"): the frozen teacher generator and its precision, the feature
taps on teacher and student, the adapters, the truncated teacher forward, the FMD and KD terms, the
validation cache of teacher images, and the student's initialisation from the teacher
(docs/method.md, "Feature-map distillation" and "Extensions")."""
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from basicsr.utils import tensor2img

from ..archs.frozen_dtype import DTYPES, run_in_dtype
from ..archs.generator_call import GeneratorFamily, bare_model, build_generator, family_of
from ..archs.taps import FeatureTaps, TapsComplete
from ..checkpoints import load_into
from ..distill.channel_init import init_student_from_teacher
from .precision import Precision


def build_frozen_teacher(teacher_opt: dict, device: torch.device, precision: Precision,
                         dtype: str = 'fp32') -> nn.Module:
    """G_T from ``sdakd.teacher_g``: eval, no grad, in ``dtype`` and the run's memory layout."""
    teacher = build_generator(teacher_opt['network'])
    load_into(teacher, teacher_opt['path'], teacher_opt['param_key'], teacher_opt['strict_load'], 'sdakd.teacher_g')
    precision.layout(teacher.to(device)).eval()
    for p in teacher.parameters():
        p.requires_grad = False
    if dtype != 'fp32':
        run_in_dtype(teacher, DTYPES[dtype])
    return teacher


class TeacherSide:
    """Everything the student learns from the teacher generator. ``adapters`` are attached once their channel
    pairs are known (``tap_channels``), by the model, which owns their optimizer and checkpoint."""

    def __init__(self, teacher: nn.Module, student: nn.Module, taps: List[str], student_taps: List[str],
                 truncate: bool = True, fp32_features: bool = False) -> None:
        self.teacher, self.student = teacher, student
        self.family: GeneratorFamily = family_of(teacher)
        self.adapters: Optional[nn.Module] = None
        self.teacher_taps = self.student_taps = None
        if taps:
            self.teacher_taps = FeatureTaps(teacher, taps, owner='teacher generator',
                                            out_dtype=torch.float32 if fp32_features else None)
            self.student_taps = FeatureTaps(student, student_taps, owner='student generator')
        self.truncate = truncate
        self._val_cache: Dict[str, object] = {}
        self._cached_feats: Optional[List[Tensor]] = None  # this batch's features from the teacher cache

    # -------------------------------------------------------------- set-up
    def tap_channels(self, spec: dict, device) -> List[Tuple[int, ...]]:
        """(student, teacher channels[, stride]) of every tap, from one probe pass. A student feature map
        ``stride`` times larger than the teacher's (in both sides) is pixel-unshuffled by its adapter; any other
        size mismatch is an error naming the taps."""
        x, cond = self.family.probe_inputs(spec, device)
        noise = self.family.make_noise(self.student, 1, device, seed=0)
        self.teacher_taps.clear()
        self.student_taps.clear()
        with torch.no_grad():
            self.family.call(self.teacher, x, cond, noise)
            family_of(self.student).call(self.student, x, cond, noise)
        self.teacher_taps.check_called_once('teacher generator')
        self.student_taps.check_called_once('student generator')
        pairs = []
        for t_name, s_name, ft, fs in zip(self.teacher_taps.names, self.student_taps.names,
                                          self.teacher_taps.collect(), self.student_taps.collect()):
            (th, tw), (sh, sw) = ft.shape[2:], fs.shape[2:]
            stride = sh // th if th and sh % th == 0 else 0
            if stride < 1 or (th * stride, tw * stride) != (sh, sw):
                raise ValueError(f'sdakd.taps: teacher tap {t_name} has spatial size {(th, tw)} but student tap '
                                 f'{s_name} has {(sh, sw)}; the student map must be as large or a whole multiple '
                                 f'as large (then its adapter pixel-unshuffles it)')
            pairs.append((fs.shape[1], ft.shape[1]) if stride == 1 else (fs.shape[1], ft.shape[1], stride))
        self.clear()
        return pairs

    def describe_taps(self, pairs: List[Tuple[int, int]]) -> str:
        return 'Feature taps (student -> teacher channels): ' + ', '.join(
            f'{s}->{t} {c}' for s, t, c in zip(self.student_taps.names, self.teacher_taps.names, pairs))

    # -------------------------------------------------------------- training
    def clear(self) -> None:
        """Drop recorded features (and the student's graph through them)."""
        for taps in (self.teacher_taps, self.student_taps):
            if taps is not None:
                taps.clear()
        self._cached_feats = None

    def forward(self, lq: Tensor, cond: Optional[Tensor], noise, need_output: bool,
                cached: Optional[Tuple[Tensor, List[Tensor]]] = None) -> Optional[Tensor]:
        """The teacher under no_grad. When only its features are needed (FMD without output distillation),
        the pass stops at the last tap: RRDBNet's three HR-resolution convolutions are skipped. ``cached``
        (output, features) from a teacher cache replaces the pass (data/teacher_cache.py)."""
        if cached is not None:
            self._cached_feats = cached[1]
            return cached[0]
        taps = self.teacher_taps
        if taps is not None:
            taps.clear()
            taps.stop_when_complete = self.truncate and not need_output
        try:
            with torch.no_grad():
                return self.family.call(self.teacher, lq, cond, noise)
        except TapsComplete:
            return None
        finally:
            if taps is not None:
                taps.stop_when_complete = False

    def fmd_term(self, fmd_loss: nn.Module) -> Tensor:
        """L_fmd: the adapted student features of the last student forward vs the teacher's."""
        teacher_feats = self._cached_feats if self._cached_feats is not None else self.teacher_taps.collect()
        return fmd_loss(self.adapters(self.student_taps.collect()), teacher_feats)

    # -------------------------------------------------------------- validation
    def validation_image(self, key: str, lq: Tensor, cond: Optional[Tensor], noise, value_range):
        """The teacher's output image for a validation input, cached: the teacher never changes."""
        if key not in self._val_cache:
            with torch.no_grad():
                out = self.family.call(self.teacher, lq, cond, noise)
            self.clear()
            self._val_cache[key] = tensor2img([out.detach().cpu()], min_max=value_range)
        return self._val_cache[key]

    # -------------------------------------------------------------- initialisation
    def init_student(self, inputs: Tensor, fp32_teacher: Callable[[], nn.Module]) -> Dict[str, Tensor]:
        """Channel selection (RRDBNet): copies teacher weights, from fp32 ones also when the training teacher
        runs in half precision (``fp32_teacher`` builds that copy on demand)."""
        is_fp32 = next(self.teacher.parameters()).dtype == torch.float32
        teacher = self.teacher if is_fp32 else fp32_teacher()
        return init_student_from_teacher(teacher, bare_model(self.student), inputs)
