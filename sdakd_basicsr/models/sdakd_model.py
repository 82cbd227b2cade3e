"""The SDAKD model: the stage loop, on BasicSR's contract (docs/method.md, section 3).

basicsr's ``RealESRGANModel`` supplies the degradation synthesis, the training-pair queue, USM targets and EMA;
named parts do the rest: ``TeacherSide``, one ``Adversary`` per discriminator role, ``Precision`` and
``checkpoints``. Saved: net_g (params, params_ema), net_d (D_S), net_d_teacher (D_T), net_adapters; the frozen
teacher generator (``sdakd.teacher_g``) is never saved, wrapped or resumed.
"""
from collections import OrderedDict
from os import path as osp
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.models.realesrgan_model import RealESRGANModel
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import master_only
from basicsr.utils.registry import MODEL_REGISTRY

from ..archs.generator_call import bare_model, family_of
from ..checkpoints import EMA_FIRST, load_into, save_networks, save_training_state
from ..data.usm_pool import PooledSharpener, pool_with_sharpened
from ..distill.options import loss_weight, optimizer_options, options_for_model
from ..distill.stage_policy import ADAPTERS_KEY, GENERATOR_KEY, NETWORK_KEYS, Role
from ..metrics.cost import count_params
from .adversaries import Adversary, DiscriminatorView, discriminator_logits, output_grad_rms
from .d_features import DiscriminatorFeatures
from .generator_objective import GeneratorObjective
from .precision import Precision
from .resume import finish_resume, log_resume_notes, restore_state_extras, resume_command, state_extras
from .teacher_side import TeacherSide, build_frozen_teacher
from .validation import validate


@MODEL_REGISTRY.register()
class SDAKDModel(RealESRGANModel):
    """Student Discriminator Assisted Knowledge Distillation on top of basicsr's Real-ESRGAN model."""

    def __init__(self, opt: dict) -> None:
        self.sd = options_for_model(opt)  # resolved (every check) once: by the pre-flight, or here
        device = torch.device('cuda' if opt['num_gpu'] != 0 else 'cpu')  # as BaseModel decides it
        self.precision = Precision(device, self.sd.amp, self.sd.channels_last, self.sd.check_finite, self.sd.stage)
        self.teacher_side: Optional[TeacherSide] = None
        self.adversaries: Dict[Role, Adversary] = OrderedDict()
        self.optimizer_lrs: List[Tuple[str, float]] = []
        self.net_g_teacher = self.net_d = self.net_d_teacher = self.net_adapters = None
        self.in_size: Optional[Tensor] = None  # GCFSR's scale condition: part of the batch, like lq and gt
        self._pending_channel_init = self.sd.init_student_from_teacher  # on the first batch, unless resumed
        super().__init__(opt)
        if self.sd.sharpen_gt_once:
            self.usm_sharpener = PooledSharpener(self.usm_sharpener)

    # ------------------------------------------------------------------ building
    def init_training_settings(self) -> None:
        logger, sd, policy = get_root_logger(), self.sd, self.sd.policy
        log_resume_notes(logger.warning)  # what --auto_resume skipped: into the log file, before anything else
        logger.info(policy.describe())
        self.ema_decay = sd.train.ema_decay
        if self.ema_decay > 0:
            self.net_g_ema = self.precision.layout(build_network(self.opt['network_g']).to(self.device))
            if self.opt['path'].get('pretrain_network_g'):
                self.load_network(self.net_g_ema, self.opt['path']['pretrain_network_g'],
                                  self.opt['path'].get('strict_load_g', True), EMA_FIRST)
            else:
                self.model_ema(0)
            self.net_g_ema.eval()
        if sd.teacher_g is not None:
            self.net_g_teacher = build_frozen_teacher(sd.teacher_g, self.device, self.precision, sd.teacher_dtype)
            logger.info(f'Student/teacher generator parameters: {count_params(self.net_g):,d} / '
                        f'{count_params(self.net_g_teacher):,d} '
                        f'({count_params(self.net_g) / count_params(self.net_g_teacher):.3f})')
            self.teacher_side = TeacherSide(self.net_g_teacher, self.net_g, sd.taps, sd.student_taps,
                                            sd.truncate_teacher, fp32_features=sd.teacher_dtype != 'fp32')
        self.net_d = self._build_discriminator(Role.STUDENT)
        self.net_d_teacher = self._build_discriminator(Role.TEACHER)
        if policy.fmd:
            self._build_adapters()
        self.net_g.train()
        self.objective = GeneratorObjective(sd.train, policy.kd, policy.fmd, self._build_loss)
        self.d_view = DiscriminatorView(sd.train.d_crop_size, sd.train.d_batch)
        self.d_features = (DiscriminatorFeatures(self.net_d_teacher, self.objective.d_feat_layers)
                           if 'd_feat' in self.objective.texture else None)
        self.setup_optimizers()  # and the adversaries, which hold their optimizers
        if not (self.objective or self.adversaries):
            raise KeyError('train: no loss term is configured (pixel_opt, perceptual_opt, kd_opt, fmd_opt, gan_opt)')
        self.net_d_iters, self.net_d_init_iters = sd.train.net_d_iters, sd.train.net_d_init_iters
        self.setup_schedulers()

    def _build_loss(self, loss_opt: Optional[dict]) -> Optional[nn.Module]:
        return build_loss(dict(loss_opt)).to(self.device) if loss_weight(loss_opt) > 0 else None

    def _build_discriminator(self, role: Role) -> Optional[nn.Module]:
        """D_S or D_T from its option block: trained (device/DDP, train mode) or frozen (eval, no grad)."""
        if not self.opt.get(role.net_key):
            return None
        net = self._load_pretrained(build_network(self.opt[role.net_key]), role.net_key, role.label)
        if self.sd.policy.trains(role):
            net = self.model_to_device(net)
            net.train()
        else:  # eval() also stops spectral norm's power iteration from updating its buffers
            net = self.precision.layout(net.to(self.device)).eval()
            for p in net.parameters():
                p.requires_grad = False
        self.print_network(net)
        return net

    def _build_adapters(self) -> None:
        pairs = self.teacher_side.tap_channels(self.opt[GENERATOR_KEY], self.device)
        get_root_logger().info(self.teacher_side.describe_taps(pairs))
        adapters = self._load_pretrained(build_network({**self.opt[ADAPTERS_KEY], 'channels': pairs}),
                                         ADAPTERS_KEY, 'adapters')
        self.net_adapters = self.teacher_side.adapters = self.model_to_device(adapters)
        self.net_adapters.train()

    def _load_pretrained(self, net: nn.Module, net_key: str, label: str) -> nn.Module:
        """``path.pretrain_<net_key>`` with basicsr's ``param_key_<label>`` / ``strict_load_<label>`` keys."""
        path_opt = self.opt['path']
        if path_opt.get(f'pretrain_{net_key}'):
            load_into(net, path_opt[f'pretrain_{net_key}'], path_opt.get(f'param_key_{label}', 'params'),
                      path_opt.get(f'strict_load_{label}', True), f'path.pretrain_{net_key}')
        return net

    def setup_optimizers(self) -> None:
        policy, train = self.sd.policy, self.sd.train
        if not policy.warmup_d_teacher:
            groups = [{'params': [p for p in self.net_g.parameters() if p.requires_grad]}]
            if self.net_adapters is not None:
                groups.append({'params': list(self.net_adapters.parameters())})
            self.optimizer_g = self._optimizer('optim_g', groups)
        for role in policy.adversary_roles:
            gan_loss = self._build_loss(getattr(train, role.loss_key))
            if gan_loss is None:  # listed with loss_weight 0: no adversarial term
                continue
            net = self.net_d if role is Role.STUDENT else self.net_d_teacher
            optimizer = self._optimizer(role.optim_key, net.parameters()) if policy.trains(role) else None
            distill = None
            if role is Role.STUDENT and loss_weight(train.d_distill_opt) > 0:
                distill = (self._build_loss(train.d_distill_opt), lambda x: discriminator_logits(self.net_d_teacher, x))
            self.adversaries[role] = Adversary(role, net, gan_loss, optimizer, self.precision, train.r1_reg_weight,
                                               train.net_d_reg_every, distill)

    def _optimizer(self, key: str, params) -> torch.optim.Optimizer:
        optim_opt = optimizer_options(self.sd.train, key)
        self.optimizer_lrs.append((key, optim_opt['lr']))  # applied again at resume (models/resume.py)
        optimizer = self.precision.register(self.get_optimizer(optim_opt.pop('type'), params, **optim_opt))
        setattr(self, f'optimizer_{key[len("optim_"):]}', optimizer)
        self.optimizers.append(optimizer)
        return optimizer

    def model_to_device(self, net: nn.Module) -> nn.Module:
        """basicsr's device placement / DDP wrapping, in the run's memory layout first."""
        return super().model_to_device(self.precision.layout(net))

    # ------------------------------------------------------------------ batches and generator calls
    def feed_data(self, data: dict) -> None:
        super().feed_data(data)
        self.in_size = data['in_size'].to(self.device) if 'in_size' in data else None
        self.teacher_cached = ((data['teacher_out'].to(self.device), [f.to(self.device) for f in data['teacher_feats']])
                               if 'teacher_feats' in data and self.is_train else None)
        for key in ('lq', 'gt', 'gt_usm'):
            if getattr(self, key, None) is not None:
                setattr(self, key, self.precision.layout_batch(getattr(self, key)))

    def _dequeue_and_enqueue(self) -> None:
        if self.sd.sharpen_gt_once:
            return pool_with_sharpened(self, super()._dequeue_and_enqueue)
        return super()._dequeue_and_enqueue()

    def draw_noise(self, batch: int, seed: Optional[int] = None) -> Optional[List[Tensor]]:
        """One noise list for this batch, shared by teacher and student (GCFSR), or None."""
        return family_of(self.net_g).make_noise(self.net_g, batch, self.device, seed)

    def generate(self, net: nn.Module, noise) -> Tensor:
        return family_of(net).call(net, self.lq, self.in_size, noise)

    def test(self) -> None:
        net = bare_model(self.net_g_ema if hasattr(self, 'net_g_ema') else self.net_g)  # rank 0 only: no DDP forward
        was_training = net.training
        net.eval()
        with torch.no_grad():
            self.output = self.generate(net, self.draw_noise(self.lq.shape[0], seed=0))
        net.train(was_training)

    # ------------------------------------------------------------------ one iteration (docs/method.md, section 3)
    def _targets(self) -> Tuple[Tensor, Tensor, Tensor]:  # Real-ESRGAN's USM or plain GT for pixel, percep, GAN
        data = self.sd.data
        return tuple(self.gt_usm if usm else self.gt for usm in (data.l1_gt_usm, data.percep_gt_usm, data.gan_gt_usm))

    def optimize_parameters(self, current_iter: int) -> None:
        pix_gt, percep_gt, gan_gt = self._targets()
        policy, precision = self.sd.policy, self.precision
        if policy.warmup_d_teacher:
            return self._warmup_teacher_discriminator(current_iter, gan_gt)
        if self._pending_channel_init:
            self._init_student_from_teacher()
        log: Dict[str, Tensor] = OrderedDict()
        noise = self.draw_noise(self.lq.shape[0])

        # 1. G_S (and the adapters): L_sup + w_kd L_kd + w_fmd L_fmd + the adversarial terms, discriminators frozen
        for adversary in self.adversaries.values():
            adversary.requires_grad(False)
        if self.teacher_side is not None:
            self.teacher_side.clear()
        self.optimizer_g.zero_grad()
        g_step = current_iter % self.net_d_iters == 0 and current_iter > self.net_d_init_iters
        logits: Dict[str, Tensor] = {}
        with precision.autocast():
            self.output = self.generate(self.net_g, noise)
            teacher_out = (self.teacher_side.forward(self.lq, self.in_size, noise, policy.needs_teacher_output,
                                                     self.teacher_cached) if policy.teacher_forward else None)
            view = self.d_view
            view.draw(*self.output.shape[-2:])  # what the discriminators see this iteration
            if g_step:
                terms = self.objective.terms(
                    self.output, pix_gt, percep_gt, teacher_out, lambda loss: self.teacher_side.fmd_term(loss),
                    progress=current_iter / max(self.opt['train'].get('total_iter') or 1, 1),
                    ema_output=lambda: self._ema_output(noise),
                    d_feat_term=lambda loss: self.d_features.term(loss, view(self.output), view(teacher_out)))
                for role, adversary in self.adversaries.items():
                    terms[f'l_g_gan_{role.tag}'], logits[f'out_{role.tag}_fake_g'] = adversary.generator_term(
                        view(self.output))
        if g_step:
            precision.check_finite(terms, current_iter)
            if self.sd.block.log_grad_norms:
                log.update(output_grad_rms(terms, self.output))
            precision.backward(sum(terms.values()), self.optimizer_g)
            precision.step(self.optimizer_g)
            log.update(terms)
        if self.teacher_side is not None:  # drop the features (and their graph) before the D steps
            self.teacher_side.clear()

        # 2. every trained discriminator: real GT vs the student's fakes (a frozen D_T only judged them above)
        if current_iter % self.sd.train.d_update_every == 0:
            for adversary in self.adversaries.values():
                if adversary.trains:
                    log.update(adversary.step(view(gan_gt), view(self.output), current_iter))
        log.update(logits)

        # 3. EMA of G_S
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)
        self.log_dict = self.reduce_loss_dict(log)

    def _warmup_teacher_discriminator(self, current_iter: int, gan_gt: Tensor) -> None:
        """Stage 0: the teacher's own outputs are the fakes D_T learns to tell from real images."""
        noise = self.draw_noise(self.lq.shape[0])
        self.output = self.teacher_side.forward(self.lq, self.in_size, noise, True, self.teacher_cached)
        self.d_view.draw(*self.output.shape[-2:])
        self.log_dict = self.reduce_loss_dict(self.adversaries[Role.TEACHER].step(
            self.d_view(gan_gt), self.d_view(self.output), current_iter))

    def _ema_output(self, noise) -> Tensor:
        """The EMA student's output on this batch (LDL's reference), without grad."""
        with torch.no_grad():
            return self.generate(self.net_g_ema, noise)

    def _init_student_from_teacher(self) -> None:
        sd = self.sd
        keep = self.teacher_side.init_student(
            self.lq, lambda: build_frozen_teacher(sd.teacher_g, self.device, self.precision, 'fp32'))
        if hasattr(self, 'net_g_ema'):
            self.model_ema(0)
        if self.opt['path'].get('models'):  # the student as initialised, before any training step
            self.save_network(self.net_g, 'net_g', 'init', param_key='params_ema')
        get_root_logger().info(f'Initialised the student from the teacher by channel selection on the first '
                               f'training batch ({self.lq.shape[0]} inputs): kept trunk channels '
                               f'{keep["trunk"].tolist()}; saved as net_g_init.pth')
        self._pending_channel_init = False

    # ------------------------------------------------------------------ validation and checkpoints (checkpoints.py)
    nondist_validation = validate  # (self, dataloader, current_iter, tb_logger, save_img), as basicsr calls it

    def load_network(self, net: nn.Module, load_path: str, strict: bool = True, param_key: Optional[str] = 'params',
                     what: str = 'path.pretrain_network_g') -> None:
        load_into(net, load_path, param_key, strict, what)

    @master_only
    def save_network(self, net, net_label: str, current_iter, param_key='params') -> None:
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        suffix = 'latest' if current_iter == -1 else current_iter
        save_networks(osp.join(self.opt['path']['models'], f'{net_label}_{suffix}.pth'), dict(zip(keys, nets)))

    @master_only
    def save_training_state(self, epoch: int, current_iter: int) -> None:
        """basicsr's training state (epoch, iteration, optimizers, schedulers) plus the fp16 GradScalers."""
        if current_iter != -1:
            save_training_state(osp.join(self.opt['path']['training_states'], f'{current_iter}.state'), epoch,
                                current_iter, self.optimizers, self.schedulers,
                                grad_scalers=self.precision.state(self.optimizers), **state_extras(self))

    def save(self, epoch: int, current_iter: int) -> None:
        # net_g, net_d, net_d_teacher, net_adapters: attribute, file and path labels of each network block
        labels = [key[len('network_'):] for key in NETWORK_KEYS]
        nets = {f'net_{label}': getattr(self, f'net_{label}', None) for label in labels}
        key, lr = self.optimizer_lrs[0]
        self.precision.check_weights(nets, current_iter, self.sd.block.max_abs_weight,
                                     resume_command(self.opt['path'].get('experiments_root', '.'), key, lr))
        if hasattr(self, 'net_g_ema'):
            self.save_network([self.net_g, self.net_g_ema], 'net_g', current_iter, param_key=['params', 'params_ema'])
        else:
            self.save_network(self.net_g, 'net_g', current_iter)
        for label in labels[1:]:
            if getattr(self, f'net_{label}', None) is not None:
                self.save_network(getattr(self, f'net_{label}'), f'net_{label}', current_iter)
        self.save_training_state(epoch, current_iter)

    def resume_training(self, resume_state: dict) -> None:
        restore_state_extras(self, resume_state, get_root_logger())  # first: refuses changed options
        super().resume_training(resume_state)
        finish_resume(self, resume_state, get_root_logger())  # the option file's learning rates, GradScalers
        self._pending_channel_init = False  # the resumed weights already went through it
