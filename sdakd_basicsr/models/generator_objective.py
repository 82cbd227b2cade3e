"""The student generator's non-adversarial loss: L_sup (pixel, perceptual) + w_kd L_kd + w_fmd L_fmd + the texture
terms (docs/method.md, "Texture terms": hf, patch, d_feat, ldl, blend).

Each term is built only when its option block is present with a weight above zero, so a stage that does
not use a term never pays for it (the VGG of a perceptual loss is the costly one).
"""
from collections import OrderedDict
from typing import Callable, Dict, Optional

from torch import Tensor, nn

from ..distill.options import loss_weight, texture_terms

LossBuilder = Callable[[dict], nn.Module]


class GeneratorObjective:
    """Pixel, perceptual, KD, FMD and texture terms of the G_S step; the adversarial terms belong to the adversaries."""

    def __init__(self, train, kd: bool, fmd: bool, build: LossBuilder) -> None:
        def maybe(loss_opt: Optional[dict]) -> Optional[nn.Module]:
            return build(dict(loss_opt)) if loss_weight(loss_opt) > 0 else None

        self.pixel = maybe(train.pixel_opt)
        self.perceptual = maybe(train.perceptual_opt)
        self.kd = maybe(train.kd_opt) if kd else None
        self.fmd = maybe(train.fmd_opt) if fmd else None
        # texture terms: {log name: (loss, the objective's own keys of its block)}
        self.texture: Dict[str, tuple] = OrderedDict()
        for key, (own, loss_block) in texture_terms(train).items():
            self.texture[key[:-len('_opt')]] = (build(loss_block), own)

    def __bool__(self) -> bool:
        return any(term is not None for term in (self.pixel, self.perceptual, self.kd, self.fmd)) or bool(self.texture)

    @property
    def d_feat_layers(self):
        return self.texture['d_feat'][1]['layers'] if 'd_feat' in self.texture else None

    def terms(self, output: Tensor, pix_gt: Tensor, percep_gt: Tensor, teacher_out: Optional[Tensor],
              fmd_term: Callable[[nn.Module], Tensor], progress: float = 0.0,
              ema_output: Optional[Callable[[], Tensor]] = None,
              d_feat_term: Optional[Callable[[nn.Module], Tensor]] = None) -> Dict[str, Tensor]:
        """The weighted terms by their log names (l_g_pix, l_g_percep, l_g_style, l_g_kd, l_g_fmd, l_g_hf, ...).

        ``progress``: the stage's fraction done (ECO's schedule); ``ema_output``: the EMA's output on the same
        inputs, computed on demand (LDL); ``d_feat_term``: D_T feature matching with a given loss."""
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
        for name, (loss, own) in self.texture.items():
            target = teacher_out if own.get('target') == 'teacher' else pix_gt
            if name == 'd_feat':
                terms['l_g_d_feat'] = d_feat_term(loss)
            elif name == 'ldl':
                terms['l_g_ldl'] = loss(output, target, ema_output())
            elif name == 'blend':
                start, end = own['teacher_share']
                share = start + (end - start) * min(max(progress, 0.0), 1.0)
                terms['l_g_blend'] = loss(output, (1 - share) * pix_gt + share * teacher_out.detach())
            else:
                terms[f'l_g_{name}'] = loss(output, target)
        return terms
