"""The student generator's non-adversarial loss: L_sup (pixel, perceptual) + w_kd L_kd + w_fmd L_fmd.

Each term is built only when its option block is present with a weight above zero, so a stage that does
not use a term never pays for it (the VGG of a perceptual loss is the costly one).
"""
from collections import OrderedDict
from typing import Callable, Dict, Optional

from torch import Tensor, nn

from ..distill.options import loss_weight

LossBuilder = Callable[[dict], nn.Module]


class GeneratorObjective:
    """Pixel, perceptual, KD and FMD terms of the G_S step; the adversarial terms belong to the adversaries."""

    def __init__(self, train, kd: bool, fmd: bool, build: LossBuilder) -> None:
        def maybe(loss_opt: Optional[dict]) -> Optional[nn.Module]:
            return build(dict(loss_opt)) if loss_weight(loss_opt) > 0 else None

        self.pixel = maybe(train.pixel_opt)
        self.perceptual = maybe(train.perceptual_opt)
        self.kd = maybe(train.kd_opt) if kd else None
        self.fmd = maybe(train.fmd_opt) if fmd else None

    def __bool__(self) -> bool:
        return any(term is not None for term in (self.pixel, self.perceptual, self.kd, self.fmd))

    def terms(self, output: Tensor, pix_gt: Tensor, percep_gt: Tensor, teacher_out: Optional[Tensor],
              fmd_term: Callable[[nn.Module], Tensor]) -> Dict[str, Tensor]:
        """The weighted terms by their log names (l_g_pix, l_g_percep, l_g_style, l_g_kd, l_g_fmd)."""
        terms: Dict[str, Tensor] = OrderedDict()
        if self.pixel is not None:
            terms['l_g_pix'] = self.pixel(output, pix_gt)
        if self.perceptual is not None:
            percep, style = self.perceptual(output, percep_gt)
            for name, value in (('l_g_percep', percep), ('l_g_style', style)):
                if value is not None:
                    terms[name] = value
        if self.kd is not None:
            terms['l_g_kd'] = self.kd(output, teacher_out)
        if self.fmd is not None:
            terms['l_g_fmd'] = fmd_term(self.fmd)
        return terms
