"""The capacity-matched student discriminator for a student of any architecture (docs/method.md, "D_S").

SDAKD's D_S is the teacher discriminator's architecture at the student's capacity. For a width-r RRDBNet the
paper's reading is D_S at width r: both generator and discriminator costs scale with r^2. For a student of
another architecture or depth there is no width r, so we define it by parameters: r = sqrt(P_S / P_T), which
gives exactly r for width-r RRDBNets; D_S's width is the teacher discriminator's times r, rounded to a
multiple of 4 and at least 8.
"""
import math

from torch import nn


def matched_width_ratio(student_params: int, teacher_params: int) -> float:
    """r = sqrt(P_S / P_T): the width factor at which a width-scaled copy of the teacher would have the
    student's parameter count."""
    if student_params <= 0 or teacher_params <= 0:
        raise ValueError(f'parameter counts must be positive, got {student_params} and {teacher_params}')
    return math.sqrt(student_params / teacher_params)


def matched_discriminator_width(student: nn.Module, teacher: nn.Module, teacher_d_width: int = 64,
                                multiple: int = 4, minimum: int = 8) -> int:
    """D_S's ``num_feat`` for ``student`` distilled from ``teacher`` (whose discriminator has
    ``teacher_d_width`` features): ``teacher_d_width * sqrt(P_S / P_T)`` rounded to ``multiple``, >= ``minimum``."""
    ratio = matched_width_ratio(sum(p.numel() for p in student.parameters()),
                                sum(p.numel() for p in teacher.parameters()))
    return max(minimum, multiple * round(teacher_d_width * ratio / multiple))
