"""The SDAKD model: BasicSR's Real-ESRGAN training model plus a frozen teacher, a student discriminator,
feature taps with adapters, and the stage policy (SDAKD.md sections 2-4).

Degradation synthesis, the training-pair queue, USM targets, EMA and checkpoint bookkeeping come from
basicsr's ``RealESRGANModel``; options are validated by ``distill.options``, what a stage trains is decided
by ``distill.stage_policy``, the features come from ``distill.taps`` and the losses from ``losses``.

Networks (top-level option keys, so that BasicSR's resume machinery handles every trained one):
  network_g          student generator G_S            saved as net_g (params, params_ema)
  network_d          student discriminator D_S        saved as net_d
  network_d_teacher  teacher discriminator D_T        saved as net_d_teacher
  network_adapters   feature adapters A_l             saved as net_adapters
  sdakd.teacher_g    frozen teacher generator G_T     never saved, never DDP-wrapped, never resumed
"""
import contextlib
import inspect
import math
import os
import time
from collections import OrderedDict
from os import path as osp
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.losses.gan_loss import r1_penalty
from basicsr.metrics import calculate_metric
from basicsr.models.realesrgan_model import RealESRGANModel
from basicsr.utils import get_root_logger, imwrite, tensor2img
from basicsr.utils.dist_util import master_only
from basicsr.utils.registry import MODEL_REGISTRY

from ..distill.channel_init import init_student_from_teacher
from ..distill.options import check_checkpoint_files, check_queue, loss_weight, parse_sdakd_options
from ..distill.sharpening import PooledSharpener, pool_with_sharpened
from ..distill.taps import DTYPES, FeatureTaps, TapsComplete, bare, run_in_dtype

_TMP = '.partial'  # checkpoints are written under this label, then renamed: an interrupted save never truncates


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in bare(net).parameters())


def describe_mismatch(net: nn.Module, state: Dict[str, Tensor], limit: int = 4) -> str:
    """A short account of how a state dict differs from a network: missing, unexpected, mis-shaped keys."""
    own = bare(net).state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f'{k}: checkpoint {tuple(state[k].shape)} vs network {tuple(own[k].shape)}' for k in own
              if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    parts = []
    if shapes:
        parts.append(f'{len(shapes)} shape mismatch(es), e.g. ' + '; '.join(shapes[:limit]))
    if missing:
        parts.append(f'{len(missing)} key(s) missing from the checkpoint, e.g. {missing[:limit]}')
    if unexpected:
        parts.append(f'{len(unexpected)} unexpected key(s), e.g. {unexpected[:limit]}')
    return '; '.join(parts) or 'no difference found'


@MODEL_REGISTRY.register()
class SDAKDModel(RealESRGANModel):
    """Student Discriminator Assisted Knowledge Distillation on top of basicsr's Real-ESRGAN model."""

    def __init__(self, opt: dict) -> None:
        self.sd = parse_sdakd_options(opt)
        if opt.get('is_train', True):
            check_queue(opt)
            check_checkpoint_files(opt, self.sd)
        self.net_g_teacher: Optional[nn.Module] = None
        self.net_d: Optional[nn.Module] = None
        self.net_d_teacher: Optional[nn.Module] = None
        self.net_adapters: Optional[nn.Module] = None
        self.student_taps: Optional[FeatureTaps] = None
        self.teacher_taps: Optional[FeatureTaps] = None
        self._teacher_val_cache: Dict[str, Tensor] = {}
        self._pending_channel_init = self.sd.init_student_from_teacher  # done on the first batch, unless resumed
        self.in_size: Optional[Tensor] = None  # GCFSR's scale condition, when the data provide one
        self._noise = None  # one noise list per iteration, shared by teacher and student (GCFSR)
        self._scalers: Dict[int, torch.amp.GradScaler] = {}  # fp16 only: one per optimizer
        super().__init__(opt)
        if self.sd.sharpen_gt_once:
            self.usm_sharpener = PooledSharpener(self.usm_sharpener)

    # ------------------------------------------------------------------ building
    def init_training_settings(self) -> None:
        logger = get_root_logger()
        train_opt = self.opt['train']
        policy = self.sd.policy
        logger.info(policy.describe())
        path_opt = self.opt['path']

        self.ema_decay = train_opt.get('ema_decay', 0)
        if self.ema_decay > 0:
            self.net_g_ema = self._layout(build_network(self.opt['network_g']).to(self.device))
            if path_opt.get('pretrain_network_g'):
                self.load_network(self.net_g_ema, path_opt['pretrain_network_g'], path_opt.get('strict_load_g', True),
                                  'params_ema')
            else:
                self.model_ema(0)
            self.net_g_ema.eval()

        if self.sd.teacher_g is not None:
            self.net_g_teacher = self._build_frozen_teacher()
            logger.info(f'Student/teacher generator parameters: {count_params(self.net_g):,d} / '
                        f'{count_params(self.net_g_teacher):,d} '
                        f'({count_params(self.net_g) / count_params(self.net_g_teacher):.3f})')
        self.net_d = self._build_trainable('network_d', 'd', policy.train_d_student)
        self.net_d_teacher = self._build_trainable('network_d_teacher', 'd_teacher', policy.train_d_teacher)
        if policy.fmd:
            self._build_taps_and_adapters()
        self.net_g.train()

        self.cri_pix = self._loss('pixel_opt')
        self.cri_perceptual = self._loss('perceptual_opt')
        self.cri_gan = self._loss('gan_opt') if 'student' in policy.adversarial else None
        uses_d_teacher = 'teacher' in policy.adversarial or policy.warmup_d_teacher
        self.cri_gan_teacher = self._loss('gan_teacher_opt') if uses_d_teacher else None
        self.cri_fmd = self._loss('fmd_opt') if policy.fmd else None
        self.cri_kd = self._loss('kd_opt') if policy.kd else None
        self.cri_d_distill = self._loss('d_distill_opt') if policy.train_d_student else None
        self.cri_ldl = None
        if not (self.cri_pix or self.cri_perceptual or self.cri_kd or self.cri_fmd or uses_d_teacher
                or policy.adversarial):
            raise KeyError('train: no loss term is configured (pixel_opt, perceptual_opt, kd_opt, fmd_opt, gan_opt)')
        self.net_d_iters = train_opt.get('net_d_iters', 1)
        self.net_d_init_iters = train_opt.get('net_d_init_iters', 0)
        self.setup_optimizers()
        self.setup_schedulers()

    def _loss(self, key: str) -> Optional[nn.Module]:
        loss_opt = self.opt['train'].get(key)
        if not loss_opt or loss_weight(loss_opt) == 0:
            return None
        return build_loss(loss_opt).to(self.device)

    def _build_frozen_teacher(self, dtype: Optional[str] = None) -> nn.Module:
        """G_T from its checkpoint: eval, no grad, in ``sdakd.teacher_dtype`` (or ``dtype``) and the memory format."""
        t = self.sd.teacher_g
        teacher = build_network(t['network'])
        self.load_network(teacher, t['path'], t['strict_load'], t['param_key'], what='sdakd.teacher_g')
        self._layout(teacher.to(self.device)).eval()
        for p in teacher.parameters():
            p.requires_grad = False
        dtype = dtype or self.sd.teacher_dtype
        if dtype != 'fp32':
            run_in_dtype(teacher, DTYPES[dtype])
        return teacher

    def _layout(self, net: nn.Module) -> nn.Module:
        """With ``sdakd.channels_last``, every 4-D parameter and buffer in channels-last layout (in place).
        Not ``net.to(memory_format=...)``: that also demands it of 5-D tensors, e.g. GCFSR's modulated weights."""
        if self.sd.channels_last:
            from basicsr.archs.stylegan2_arch import ModulatedConv2d
            if any(isinstance(m, ModulatedConv2d) for m in net.modules()):
                raise ValueError(f'sdakd.channels_last: {type(bare(net)).__name__} uses StyleGAN2 modulated '
                                 f'convolutions, which fold the batch into convolution groups and need the '
                                 f'default NCHW layout; set sdakd.channels_last: false (GCFSR)')
            net._apply(lambda t: t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t)
        return net

    def model_to_device(self, net: nn.Module) -> nn.Module:
        """basicsr's device placement / DDP wrapping, in channels-last layout first when asked."""
        return super().model_to_device(self._layout(net))

    def _build_trainable(self, key: str, label: str, trains: bool) -> Optional[nn.Module]:
        if not self.opt.get(key):
            return None
        net = build_network(self.opt[key])
        path = self.opt['path'].get(f'pretrain_{key}')
        if path:
            self.load_network(net, path, self.opt['path'].get(f'strict_load_{label}', True),
                              self.opt['path'].get(f'param_key_{label}', 'params'), what=f'path.pretrain_{key}')
        if trains:
            net = self.model_to_device(net)
            net.train()
        else:
            # frozen: eval() also stops spectral norm's power iteration from updating its buffers
            net = self._layout(net.to(self.device)).eval()
            for p in net.parameters():
                p.requires_grad = False
        self.print_network(net)
        return net

    # ------------------------------------------------------------------ generator calls
    @staticmethod
    def _takes_condition(net: nn.Module) -> bool:
        return 'in_size' in inspect.signature(bare(net).forward).parameters

    def _generate(self, net: nn.Module, x: Tensor) -> Tensor:
        """Run a generator the way its architecture wants: GCFSR takes the scale condition and the
        shared noise list and returns a tuple; RRDBNet takes the image alone."""
        conditional = self._takes_condition(net)
        if conditional and self.in_size is None:
            raise KeyError(f'{type(bare(net)).__name__} needs the scale condition: the dataset must return `in_size`')
        args = (x, self.in_size) if conditional else (x, )
        kwargs = {'noise': self._noise} if self._noise is not None else {}
        out = net(*args, **kwargs)
        return out[0] if isinstance(out, (tuple, list)) else out

    def _draw_noise(self, batch: int, seed: Optional[int] = None) -> None:
        """A fresh noise list for this batch (fixed by ``seed`` for validation), if the student uses noise."""
        student = bare(self.net_g)
        if not hasattr(student, 'make_noise'):
            self._noise = None
            return
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self._noise = student.make_noise(batch, device=self.device, generator=generator)

    def _dequeue_and_enqueue(self) -> None:
        if self.sd.sharpen_gt_once:
            return pool_with_sharpened(self, super()._dequeue_and_enqueue)
        return super()._dequeue_and_enqueue()

    def feed_data(self, data: dict) -> None:
        super().feed_data(data)
        self.in_size = data['in_size'].to(self.device) if 'in_size' in data else None
        if self.sd.channels_last:
            for key in ('lq', 'gt', 'gt_usm'):
                if getattr(self, key, None) is not None:
                    setattr(self, key, getattr(self, key).contiguous(memory_format=torch.channels_last))

    def test(self) -> None:
        # the bare network: validation runs on rank 0 only, and a DDP wrapper's forward may start a collective
        # (buffer broadcast) that the other ranks never join
        net = bare(self.net_g_ema if hasattr(self, 'net_g_ema') else self.net_g)
        was_training = net.training
        net.eval()
        self._draw_noise(self.lq.shape[0], seed=0)
        with torch.no_grad():
            self.output = self._generate(net, self.lq)
        net.train(was_training)

    def _probe_input(self) -> Tensor:
        """A small input for probing tap shapes: 16 px (divisible by every RRDBNet pixel-unshuffle), or the
        fixed input size of a GCFSR."""
        size = self.opt['network_g'].get('out_size', 16)
        if self._takes_condition(self.net_g):
            self.in_size = torch.ones(1, 1, device=self.device)
        self._draw_noise(1, seed=0)
        return torch.rand(1, self.opt['network_g'].get('num_in_ch', 3), size, size, device=self.device)

    def _build_taps_and_adapters(self) -> None:
        self.teacher_taps = FeatureTaps(self.net_g_teacher, self.sd.taps, owner='teacher generator',
                                        out_dtype=None if self.sd.teacher_dtype == 'fp32' else torch.float32)
        self.student_taps = FeatureTaps(self.net_g, self.sd.student_taps, owner='student generator')
        with torch.no_grad():
            x = self._probe_input()
            self._generate(self.net_g_teacher, x)
            self._generate(self.net_g, x)
        pairs: List[Tuple[int, int]] = []
        for t_name, s_name, ft, fs in zip(self.sd.taps, self.sd.student_taps, self.teacher_taps.collect(),
                                          self.student_taps.collect()):
            if ft.shape[2:] != fs.shape[2:]:
                raise ValueError(f'sdakd.taps: teacher tap {t_name} has spatial size {tuple(ft.shape[2:])} but '
                                 f'student tap {s_name} has {tuple(fs.shape[2:])}; taps must match in H x W')
            pairs.append((fs.shape[1], ft.shape[1]))
        self.teacher_taps.clear()
        self.student_taps.clear()
        get_root_logger().info('Feature taps (student -> teacher channels): ' + ', '.join(
            f'{s}->{t} {c}' for s, t, c in zip(self.sd.student_taps, self.sd.taps, pairs)))
        self.net_adapters = build_network({**self.opt['network_adapters'], 'channels': pairs})
        path = self.opt['path'].get('pretrain_network_adapters')
        if path:
            self.load_network(self.net_adapters, path, self.opt['path'].get('strict_load_adapters', True),
                              self.opt['path'].get('param_key_adapters', 'params'), what='path.pretrain_network_adapters')
        self.net_adapters = self.model_to_device(self.net_adapters)
        self.net_adapters.train()

    def setup_optimizers(self) -> None:
        if not self.sd.policy.warmup_d_teacher:
            groups = [{'params': [p for p in self.net_g.parameters() if p.requires_grad]}]
            if self.net_adapters is not None:
                groups.append({'params': list(self.net_adapters.parameters())})
            self.optimizer_g = self._optimizer('optim_g', groups)
            self.optimizers.append(self.optimizer_g)
        if self.sd.policy.train_d_student:
            self.optimizer_d = self._optimizer('optim_d', self.net_d.parameters())
            self.optimizers.append(self.optimizer_d)
        if self.sd.policy.train_d_teacher:
            self.optimizer_d_teacher = self._optimizer('optim_d_teacher', self.net_d_teacher.parameters())
            self.optimizers.append(self.optimizer_d_teacher)

    # ------------------------------------------------------------------ mixed precision
    def _autocast(self):
        if self.sd.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type,
                              dtype=torch.bfloat16 if self.sd.amp == 'bf16' else torch.float16)

    def _backward(self, loss: Tensor, optimizer: torch.optim.Optimizer) -> None:
        scaler = self._scalers.get(id(optimizer))
        (scaler.scale(loss) if scaler is not None else loss).backward()

    def _step(self, optimizer: torch.optim.Optimizer) -> None:
        scaler = self._scalers.get(id(optimizer))
        if scaler is None:
            optimizer.step()
        else:  # skips the step when fp16 gradients overflowed, and adapts the scale
            scaler.step(optimizer)
            scaler.update()

    def _optimizer(self, key: str, params) -> torch.optim.Optimizer:
        train_opt = self.opt['train']
        if key not in train_opt:
            raise KeyError(f'train.{key} is required')
        optim_opt = dict(train_opt[key])
        if train_opt.get('lazy_reg_correction', False):
            # StyleGAN2's lazy regularisation: lr and betas scaled by every / (every + 1)
            every = train_opt.get('net_g_reg_every', 4) if key == 'optim_g' else train_opt.get('net_d_reg_every', 16)
            ratio = every / (every + 1)
            optim_opt['lr'] = optim_opt['lr'] * ratio
            optim_opt['betas'] = [b**ratio for b in optim_opt.get('betas', (0.9, 0.999))]
        optimizer = self.get_optimizer(optim_opt.pop('type'), params, **optim_opt)
        if self.sd.amp == 'fp16':
            self._scalers[id(optimizer)] = torch.amp.GradScaler(self.device.type)
        return optimizer

    # ------------------------------------------------------------------ loading / saving
    def load_network(self, net: nn.Module, load_path: str, strict: bool = True, param_key: Optional[str] = 'params',
                     what: Optional[str] = None) -> None:
        """basicsr's loader, with errors that name the option, the file and what does not fit."""
        what = what or 'checkpoint'
        if not osp.isfile(load_path):
            raise FileNotFoundError(f'{what}: checkpoint not found: {load_path}')
        state = torch.load(load_path, map_location='cpu')
        if param_key is not None and param_key not in state and 'params' not in state:
            raise KeyError(f'{what}: {load_path} has no {param_key!r} entry (its keys: {sorted(state)[:6]}); set '
                           f'the param_key option to one of them, or ~ for a raw state dict')
        try:
            super().load_network(net, load_path, strict, param_key)
        except RuntimeError as err:
            key = param_key if param_key in state else 'params'
            loaded = state[key] if param_key is not None else state
            loaded = {k[7:] if k.startswith('module.') else k: v for k, v in loaded.items()}
            raise ValueError(f'{what}: {load_path} [{key}] does not fit {type(bare(net)).__name__}: '
                             f'{describe_mismatch(net, loaded)}. Check the widths in the option file '
                             f'(num_feat / num_grow_ch / num_block) against the run that wrote it.') from err

    @master_only
    def save_network(self, net, net_label: str, current_iter: int, param_key='params') -> None:
        super().save_network(net, net_label + _TMP, current_iter, param_key)
        suffix = 'latest' if current_iter == -1 else current_iter
        tmp = osp.join(self.opt['path']['models'], f'{net_label}{_TMP}_{suffix}.pth')
        if osp.isfile(tmp):
            os.replace(tmp, osp.join(self.opt['path']['models'], f'{net_label}_{suffix}.pth'))

    @master_only
    def save_training_state(self, epoch: int, current_iter: int) -> None:
        """basicsr's training state (epoch, iteration, optimizers, schedulers) plus the fp16 GradScalers,
        written into a side folder and then renamed: --auto_resume never meets a truncated state."""
        if current_iter == -1:
            return
        state = {'epoch': epoch, 'iter': current_iter,
                 'optimizers': [o.state_dict() for o in self.optimizers],
                 'schedulers': [s.state_dict() for s in self.schedulers]}
        if self._scalers:  # in optimizer order; None for an optimizer without one
            state['grad_scalers'] = [self._scalers[id(o)].state_dict() if id(o) in self._scalers else None
                                     for o in self.optimizers]
        final_dir = self.opt['path']['training_states']
        tmp_dir = osp.join(final_dir, _TMP)
        os.makedirs(tmp_dir, exist_ok=True)
        tmp = osp.join(tmp_dir, f'{current_iter}.state')
        for attempt in range(3):  # basicsr's retries for flaky (network) file systems
            try:
                torch.save(state, tmp)
                break
            except OSError as err:
                if attempt == 2:
                    raise
                get_root_logger().warning(f'Saving the training state failed ({err}); retrying')
                time.sleep(1)
        os.replace(tmp, osp.join(final_dir, f'{current_iter}.state'))

    def save(self, epoch: int, current_iter: int) -> None:
        if hasattr(self, 'net_g_ema'):
            self.save_network([self.net_g, self.net_g_ema], 'net_g', current_iter, param_key=['params', 'params_ema'])
        else:
            self.save_network(self.net_g, 'net_g', current_iter)
        for label in ('d', 'd_teacher', 'adapters'):
            net = getattr(self, f'net_{label}', None)
            if net is not None:
                self.save_network(net, f'net_{label}', current_iter)
        self.save_training_state(epoch, current_iter)

    # ------------------------------------------------------------------ training
    def resume_training(self, resume_state: dict) -> None:
        super().resume_training(resume_state)
        self._pending_channel_init = False  # the resumed weights already went through it
        saved = resume_state.get('grad_scalers')
        if not self._scalers:
            return
        if saved is None or len(saved) != len(self.optimizers):
            get_root_logger().warning('sdakd.amp fp16: the training state holds no GradScaler state (it was written '
                                      'without fp16); the loss scales restart from their initial value')
            return
        for optimizer, scaler_state in zip(self.optimizers, saved):
            if scaler_state is not None and id(optimizer) in self._scalers:
                self._scalers[id(optimizer)].load_state_dict(scaler_state)

    def _init_student_from_teacher(self) -> None:
        # the selection copies teacher weights: from fp32 ones, also when the training teacher runs in half
        teacher = self.net_g_teacher if self.sd.teacher_dtype == 'fp32' else self._build_frozen_teacher('fp32')
        keep = init_student_from_teacher(teacher, bare(self.net_g), self.lq)  # RRDBNet only
        if hasattr(self, 'net_g_ema'):
            self.model_ema(0)
        if self.opt['path'].get('models'):  # the student as initialised, before any training step
            self.save_network(self.net_g, 'net_g', 'init', param_key='params_ema')
        get_root_logger().info(f'Initialised the student from the teacher by channel selection on the first '
                               f'training batch ({self.lq.shape[0]} inputs): kept trunk channels '
                               f'{keep["trunk"].tolist()}; saved as net_g_init.pth')
        self._pending_channel_init = False

    def _warmup_d_teacher(self, current_iter: int, gan_gt: Tensor) -> None:
        """Stage 0: the teacher's own outputs are the fakes D_T learns to tell from real images."""
        self._draw_noise(self.lq.shape[0])
        with torch.no_grad():
            self.output = self._generate(self.net_g_teacher, self.lq)
        if self.teacher_taps is not None:
            self.teacher_taps.clear()
        self.log_dict = self.reduce_loss_dict(self._discriminator_step(
            'dt', self.net_d_teacher, self.cri_gan_teacher, self.optimizer_d_teacher, gan_gt, self.output, current_iter))

    def _discriminator_step(self, tag: str, net: nn.Module, cri: nn.Module, optimizer: torch.optim.Optimizer,
                            real: Tensor, fake: Tensor, current_iter: int) -> Dict[str, Tensor]:
        """One training step of a discriminator: real vs ``fake`` (detached), lazy R1; returns its log terms."""
        for p in net.parameters():
            p.requires_grad = True
        optimizer.zero_grad()
        log: Dict[str, Tensor] = OrderedDict()
        preds = {}
        for kind, images, is_real in (('real', real, True), ('fake', fake.detach().clone(), False)):
            with self._autocast():
                pred = net(images)
                terms = {f'l_{tag}_{kind}': cri(pred, is_real, is_disc=True)}
                if tag == 'ds' and self.cri_d_distill is not None:
                    terms[f'l_ds_distill_{kind}'] = self.cri_d_distill(pred, self._d_teacher_logits(images))
            self._check_finite(terms, current_iter)
            self._backward(sum(terms.values()), optimizer)
            log.update(terms)
            preds[kind] = pred.detach().mean()
        log.update([(f'out_{tag}_real', preds['real']), (f'out_{tag}_fake', preds['fake'])])
        log.update(self._r1_step(tag, net, real, current_iter, optimizer))
        self._step(optimizer)
        return log

    def _d_teacher_logits(self, images: Tensor) -> Tensor:
        """D_T's logits as a distillation target for D_S: no grad, and in eval mode so that this extra pass
        does not advance D_T's spectral-norm power iteration."""
        d_teacher = bare(self.net_d_teacher)  # no DDP buffer broadcast for a pass that trains nothing
        was_training = d_teacher.training
        d_teacher.eval()
        try:
            with torch.no_grad():
                return d_teacher(images).float()
        finally:
            d_teacher.train(was_training)

    def _r1_step(self, tag: str, net: nn.Module, real: Tensor, current_iter: int,
                 optimizer: torch.optim.Optimizer) -> Dict[str, Tensor]:
        """Lazy R1 (StyleGAN2/GCFSR): every net_d_reg_every iterations, r1_reg_weight / 2 * E|grad D(real)|^2,
        scaled by the interval; accumulates into the discriminator's gradients."""
        train_opt = self.opt['train']
        weight, every = train_opt.get('r1_reg_weight', 0), train_opt.get('net_d_reg_every', 16)
        if not weight or current_iter % every:
            return {}
        real = real.detach().requires_grad_(True)
        pred = net(real)
        l_r1 = weight / 2 * r1_penalty(pred, real) * every + 0 * pred[0].sum()
        self._check_finite({f'l_{tag}_r1': l_r1}, current_iter)
        self._backward(l_r1, optimizer)  # in fp32: the gradient penalty is outside autocast
        return {f'l_{tag}_r1': l_r1.detach()}

    def _teacher_forward(self, need_output: bool) -> Optional[Tensor]:
        """The frozen teacher under no_grad. When only its features are needed (FMD without output
        distillation), the pass stops at the last tap: RRDBNet's three HR-resolution convolutions are skipped."""
        taps = self.teacher_taps
        if taps is not None:
            taps.clear()
            taps.stop_when_complete = self.sd.truncate_teacher and not need_output
        try:
            with torch.no_grad():
                return self._generate(self.net_g_teacher, self.lq)
        except TapsComplete:
            return None
        finally:
            if taps is not None:
                taps.stop_when_complete = False

    def _targets(self) -> Tuple[Tensor, Tensor, Tensor]:
        """Real-ESRGAN's choice of USM-sharpened or plain GT for the pixel, perceptual and GAN terms."""
        def target(key: str, default: bool) -> Tensor:
            return self.gt_usm if self.opt.get(key, default) else self.gt

        return target('l1_gt_usm', True), target('percep_gt_usm', True), target('gan_gt_usm', False)

    def _discriminators(self):
        """(log tag, network, GAN loss, optimizer or None) for every discriminator in the G loss."""
        out = []
        if self.cri_gan is not None:
            out.append(('ds', self.net_d, self.cri_gan, getattr(self, 'optimizer_d', None)))
        if self.cri_gan_teacher is not None:
            out.append(('dt', self.net_d_teacher, self.cri_gan_teacher, getattr(self, 'optimizer_d_teacher', None)))
        return out

    def _check_finite(self, terms: Dict[str, Tensor], current_iter: int) -> None:
        if not self.sd.check_finite:
            return
        for name, value in terms.items():
            if not torch.isfinite(value.detach()).all():
                raise FloatingPointError(
                    f'SDAKD stage {self.sd.stage}: loss term {name} = {value.detach().float().mean().item()} at '
                    f'iteration {current_iter}. Training stopped before this step was applied; the checkpoints on '
                    f'disk are from earlier iterations and were not overwritten. Lower the learning rate or this '
                    f"term's loss_weight, or resume from the last checkpoint with --auto_resume.")

    def _generator_terms(self, pix_gt: Tensor, percep_gt: Tensor, teacher_out: Optional[Tensor],
                         discriminators) -> Dict[str, Tensor]:
        terms: Dict[str, Tensor] = OrderedDict()
        if self.cri_pix:
            terms['l_g_pix'] = self.cri_pix(self.output, pix_gt)
        if self.cri_perceptual:
            percep, style = self.cri_perceptual(self.output, percep_gt)
            if percep is not None:
                terms['l_g_percep'] = percep
            if style is not None:
                terms['l_g_style'] = style
        if self.cri_kd:
            terms['l_g_kd'] = self.cri_kd(self.output, teacher_out)
        if self.cri_fmd:
            adapted = self.net_adapters(self.student_taps.collect())
            terms['l_g_fmd'] = self.cri_fmd(adapted, self.teacher_taps.collect())
        for tag, net, cri, _ in discriminators:
            pred = net(self.output)
            terms[f'l_g_gan_{tag}'] = cri(pred, True, is_disc=False)
            self._logits[f'out_{tag}_fake_g'] = pred.detach().mean()
        return terms

    def optimize_parameters(self, current_iter: int) -> None:
        pix_gt, percep_gt, gan_gt = self._targets()
        policy = self.sd.policy
        if policy.warmup_d_teacher:
            return self._warmup_d_teacher(current_iter, gan_gt)
        if self._pending_channel_init:
            self._init_student_from_teacher()
        discriminators = self._discriminators()
        log: Dict[str, Tensor] = OrderedDict()
        self._logits: Dict[str, Tensor] = OrderedDict()

        for _, net, _, _ in discriminators:
            for p in net.parameters():
                p.requires_grad = False
        if self.student_taps is not None:
            self.student_taps.clear()
        self.optimizer_g.zero_grad()
        self._draw_noise(self.lq.shape[0])
        g_step = current_iter % self.net_d_iters == 0 and current_iter > self.net_d_init_iters
        with self._autocast():
            self.output = self._generate(self.net_g, self.lq)
            teacher_out = self._teacher_forward(need_output=policy.kd) if policy.teacher_forward else None
            terms = self._generator_terms(pix_gt, percep_gt, teacher_out, discriminators) if g_step else {}
        if g_step:
            self._check_finite(terms, current_iter)
            self._backward(sum(terms.values()), self.optimizer_g)
            self._step(self.optimizer_g)
            log.update(terms)
        if self.student_taps is not None:  # drop the features (and their graph) before the D steps
            self.student_taps.clear()
            self.teacher_taps.clear()

        for tag, net, cri, optimizer in discriminators:
            if optimizer is not None:  # a frozen D_T only logs its view of the fakes (from the G step)
                log.update(self._discriminator_step(tag, net, cri, optimizer, gan_gt, self.output, current_iter))
        log.update(self._logits)

        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)
        self.log_dict = self.reduce_loss_dict(log)

    # ------------------------------------------------------------------ validation
    def _teacher_image(self, key: str) -> Tensor:
        """The teacher's output for the current validation input, cached: the teacher never changes."""
        if key not in self._teacher_val_cache:
            self._draw_noise(self.lq.shape[0], seed=0)  # the same noise as test() gives the student
            with torch.no_grad():
                out = self._generate(self.net_g_teacher, self.lq)
            if self.teacher_taps is not None:
                self.teacher_taps.clear()
            self._teacher_val_cache[key] = tensor2img([out.detach().cpu()], min_max=self.sd.value_range)
        return self._teacher_val_cache[key]

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img) -> None:
        was_training = self.is_train
        self.is_train = False  # validation pairs come from the loader, not from the synthesis
        try:
            self._validate(dataloader, current_iter, tb_logger, save_img)
        finally:
            self.is_train = was_training

    def _validate(self, dataloader, current_iter, tb_logger, save_img) -> None:
        logger = get_root_logger()
        dataset_name = dataloader.dataset.opt['name']
        metrics_opt = dict(self.opt['val'].get('metrics') or {})
        teacher_fidelity = self.sd.teacher_fidelity and self.net_g_teacher is not None
        names = list(metrics_opt) + (['psnr_teacher'] if teacher_fidelity else [])
        sums = {n: 0.0 for n in names}
        counts = {n: 0 for n in names}
        skipped: Dict[str, str] = {}
        for val_data in dataloader:
            img_name = osp.splitext(osp.basename(val_data['lq_path'][0]))[0]
            self.feed_data(val_data)
            self.test()
            sr_img = tensor2img([self.output.detach().cpu()], min_max=self.sd.value_range)
            metric_data = {'img': sr_img}
            if hasattr(self, 'gt'):
                metric_data['img2'] = tensor2img([self.gt.detach().cpu()], min_max=self.sd.value_range)
            for name, opt_ in metrics_opt.items():
                try:
                    value = calculate_metric(metric_data, opt_)
                except Exception as err:  # NIQE raises on small or flat images: skip, never kill training
                    skipped[name] = f'{type(err).__name__}: {err}'
                    continue
                sums[name] += float(value)
                counts[name] += 1
            if teacher_fidelity:
                teacher_img = self._teacher_image(val_data['lq_path'][0])
                sums['psnr_teacher'] += float(calculate_metric({'img': sr_img, 'img2': teacher_img},
                                                               {'type': 'calculate_psnr', 'crop_border': 4}))
                counts['psnr_teacher'] += 1
            if save_img:
                self._save_val_image(sr_img, img_name, dataset_name, current_iter)
            for attr in ('gt', 'lq', 'output', 'gt_usm'):
                if hasattr(self, attr):
                    delattr(self, attr)
        for name, reason in skipped.items():
            logger.warning(f'Validation metric {name} skipped on {len(dataloader) - counts[name]} image(s): {reason}')
        if not names:
            return
        self.metric_results = {n: (sums[n] / counts[n] if counts[n] else math.nan) for n in names}
        if not hasattr(self, 'best_metric_results'):
            self.best_metric_results = {}
        record = self.best_metric_results.setdefault(dataset_name, {})
        for name in names:  # basicsr's initialiser knows only val.metrics (and fails when there are none)
            better = (metrics_opt.get(name) or {}).get('better', 'higher')
            record.setdefault(name, dict(better=better, val=-math.inf if better == 'higher' else math.inf, iter=-1))
        for name, value in self.metric_results.items():
            if not math.isnan(value):
                self._update_best_metric_result(dataset_name, name, value, current_iter)
        self._log_validation_metric_values(current_iter, dataset_name, tb_logger)

    def _save_val_image(self, img, img_name: str, dataset_name: str, current_iter) -> None:
        vis = self.opt['path']['visualization']
        if self.opt['is_train']:
            path = osp.join(vis, img_name, f'{img_name}_{current_iter}.png')
        else:
            suffix = self.opt['val'].get('suffix') or self.opt['name']
            path = osp.join(vis, dataset_name, f'{img_name}_{suffix}.png')
        imwrite(img, path)
