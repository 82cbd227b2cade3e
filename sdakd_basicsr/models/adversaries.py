"""The discriminators of an SDAKD run, one ``Adversary`` per role (D_S, D_T): the generator's adversarial
term, the discriminator's own step with lazy R1, and the optional D_T -> D_S logit distillation
(docs/method.md, "Stages" and "Switches")."""
from collections import OrderedDict
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import Tensor, nn

from basicsr.losses.gan_loss import r1_penalty

from ..archs.generator_call import bare_model
from ..distill.stage_policy import Role
from .precision import Precision


def discriminator_logits(net: nn.Module, images: Tensor) -> Tensor:
    """A discriminator's logits as a target: no grad, the bare network (no DDP buffer broadcast for a pass
    that trains nothing), in eval mode so that spectral norm's power iteration does not advance."""
    d = bare_model(net)
    was_training = d.training
    d.eval()
    try:
        with torch.no_grad():
            return d(images).float()
    finally:
        d.train(was_training)


def output_grad_rms(terms: Dict[str, Tensor], output: Tensor) -> Dict[str, Tensor]:
    """RMS of the gradient each adversarial (and the KD) term sends to the generator's output: with a
    discriminator far stronger than the student, it vanishes or explodes (docs/method.md, section 6)."""
    grads = OrderedDict()
    for name, term in terms.items():
        if name.startswith('l_g_gan_') or name == 'l_g_kd':
            grad, = torch.autograd.grad(term, output, retain_graph=True, allow_unused=True)
            if grad is not None:
                grads[f'grad_{name}'] = grad.detach().float().pow(2).mean().sqrt()
    return grads


class DiscriminatorView:
    """What the discriminators see of a batch (``train.d_crop_size``, ``train.d_batch``): the first ``batch`` images,
    cut to one random ``crop`` x ``crop`` window per iteration (the same window for real, fake and teacher images,
    drawn from the run's seeded torch generator). The whole batch when both are None."""

    def __init__(self, crop: Optional[int] = None, batch: Optional[int] = None) -> None:
        self.crop, self.batch = crop, batch
        self.window: Optional[Tuple[int, int]] = None

    def draw(self, height: int, width: int) -> None:
        """A new window for this iteration's images of ``height`` x ``width``."""
        if self.crop is None or self.crop >= min(height, width):
            self.window = None
            return
        top = int(torch.randint(0, height - self.crop + 1, ()))
        left = int(torch.randint(0, width - self.crop + 1, ()))
        self.window = (top, left)

    def __call__(self, images: Tensor) -> Tensor:
        if self.batch is not None:
            images = images[:self.batch]
        if self.window is not None:
            top, left = self.window
            images = images[..., top:top + self.crop, left:left + self.crop]
        return images


class Adversary:
    """One discriminator in one role. ``optimizer`` None: it is frozen and only judges the generator."""

    def __init__(self, role: Role, net: nn.Module, gan_loss: nn.Module, optimizer: Optional[torch.optim.Optimizer],
                 precision: Precision, r1_weight: float = 0., r1_every: int = 16,
                 distill: Optional[Tuple[nn.Module, Callable[[Tensor], Tensor]]] = None) -> None:
        self.role, self.net, self.gan_loss, self.optimizer = role, net, gan_loss, optimizer
        self.precision, self.r1_weight, self.r1_every = precision, r1_weight, r1_every
        self.distill = distill  # (loss, target logits of the same images), D_S only

    @property
    def trains(self) -> bool:
        return self.optimizer is not None

    def requires_grad(self, flag: bool) -> None:
        for p in self.net.parameters():
            p.requires_grad = flag

    def generator_term(self, fake: Tensor) -> Tuple[Tensor, Tensor]:
        """(the generator's adversarial loss on ``fake``, the mean logit it saw)."""
        pred = self.net(fake)
        return self.gan_loss(pred, True, is_disc=False), pred.detach().mean()

    def step(self, real: Tensor, fake: Tensor, current_iter: int) -> Dict[str, Tensor]:
        """One training step: real vs ``fake`` (detached), lazy R1; returns its log terms."""
        tag, precision, optimizer = self.role.tag, self.precision, self.optimizer
        self.requires_grad(True)
        optimizer.zero_grad()
        log: Dict[str, Tensor] = OrderedDict()
        means = {}
        for kind, images, is_real in (('real', real, True), ('fake', fake.detach().clone(), False)):
            with precision.autocast():
                pred = self.net(images)
                terms = {f'l_{tag}_{kind}': self.gan_loss(pred, is_real, is_disc=True)}
                if self.distill is not None:
                    loss, target = self.distill
                    terms[f'l_{tag}_distill_{kind}'] = loss(pred, target(images))
            precision.check_finite(terms, current_iter)
            precision.backward(sum(terms.values()), optimizer)
            log.update(terms)
            means[kind] = pred.detach().mean()
        log.update([(f'out_{tag}_real', means['real']), (f'out_{tag}_fake', means['fake'])])
        log.update(self._r1(real, current_iter))
        precision.step(optimizer)
        return log

    def _r1(self, real: Tensor, current_iter: int) -> Dict[str, Tensor]:
        """Lazy R1 (StyleGAN2/GCFSR): every ``r1_every`` iterations, r1_weight / 2 * E|grad D(real)|^2, scaled
        by the interval; accumulates into the discriminator's gradients, in fp32 (outside autocast)."""
        if not self.r1_weight or current_iter % self.r1_every:
            return {}
        real = real.detach().requires_grad_(True)
        pred = self.net(real)
        l_r1 = self.r1_weight / 2 * r1_penalty(pred, real) * self.r1_every + 0 * pred[0].sum()
        name = f'l_{self.role.tag}_r1'
        self.precision.check_finite({name: l_r1}, current_iter)
        self.precision.backward(l_r1, self.optimizer)
        return {name: l_r1.detach()}
