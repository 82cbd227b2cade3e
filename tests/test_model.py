"""SDAKDModel behaviour on tiny networks, without the pipeline: what each stage runs, trains and freezes."""
import copy

import pytest
import torch

from tests.helpers import DELETE, TEACHER_D_FILE, TEACHER_G_FILE, build, tiny_options, train_batch

NO_PREV = {'path.pretrain_network_g': None, 'path.pretrain_network_d': None, 'path.pretrain_network_adapters': None}


def stage_opts(stage, **extra):
    return tiny_options(stage, **{**NO_PREV, **extra})


def count_forwards(net):
    """Forward passes started (a pre-hook: a teacher pass cut short at its last tap counts too)."""
    calls = []
    net.register_forward_pre_hook(lambda *_: calls.append(1))
    return calls


def run_iters(model, opt, n, start=1):
    for it in range(start, start + n):
        model.feed_data(train_batch(opt, seed=it))
        model.optimize_parameters(it)


def test_stage1_does_not_run_the_teacher(build_model_from):
    opt = stage_opts(1)
    model = build_model_from(opt)
    calls = count_forwards(model.net_g_teacher)
    run_iters(model, opt, 2)
    assert calls == []
    assert set(model.log_dict) == {'l_g_pix', 'l_g_percep'}
    assert len(model.optimizers) == 1


def test_stage1_with_output_distillation_runs_the_teacher(build_model_from):
    opt = stage_opts(1, **{'train.kd_opt.loss_weight': 0.5})
    model = build_model_from(opt)
    calls = count_forwards(model.net_g_teacher)
    run_iters(model, opt, 2)
    assert len(calls) == 2 and 'l_g_kd' in model.log_dict


def test_teacher_is_frozen_bit_identical_and_not_optimised(build_model_from):
    opt = stage_opts(3)
    model = build_model_from(opt)
    official = torch.load(TEACHER_G_FILE)['params_ema']
    calls = count_forwards(model.net_g_teacher)
    run_iters(model, opt, 2)
    assert len(calls) == 2
    assert not model.net_g_teacher.training
    state = model.net_g_teacher.state_dict()
    assert all(torch.equal(state[k], official[k]) for k in official)
    optimised = {id(p) for o in model.optimizers for g in o.param_groups for p in g['params']}
    assert not optimised & {id(p) for p in model.net_g_teacher.parameters()}
    assert not isinstance(model.net_g_teacher, torch.nn.parallel.DistributedDataParallel)


@pytest.mark.parametrize('trainable', [True, False])
def test_teacher_discriminator_changes_only_when_trainable(trainable, build_model_from):
    extra = {'sdakd.train_d_teacher': trainable}
    if not trainable:
        extra['train.optim_d_teacher'] = DELETE  # not needed when D_T is frozen
    opt = stage_opts(3, **extra)
    model = build_model_from(opt)
    official = torch.load(TEACHER_D_FILE)['params']
    assert set(official) >= {'conv1.weight_orig', 'conv1.weight_u', 'conv1.weight_v'}  # the official SN layout
    run_iters(model, opt, 2)
    state = model.net_d_teacher.state_dict()
    unchanged = all(torch.equal(state[k], official[k]) for k in official)
    assert unchanged is not trainable
    assert len(model.optimizers) == (3 if trainable else 2)
    assert 'out_dt_fake_g' in model.log_dict  # D_T's view of the fakes is logged either way
    assert ('l_dt_real' in model.log_dict) is trainable


@pytest.mark.parametrize('student_feat, grow', [(4, 2), (2, 1)])  # widths 1/2 and 1/4 of the tiny teacher
def test_adapters_follow_the_width_and_receive_gradients(student_feat, grow, build_model_from):
    opt = stage_opts(2, **{'network_g.num_feat': student_feat, 'network_g.num_grow_ch': grow})
    model = build_model_from(opt)
    firsts = [a[0] for a in model.net_adapters.adapters]
    assert [tuple(c.weight.shape) for c in firsts] == [(8, student_feat, 1, 1)] * 3
    before = copy.deepcopy(model.net_adapters.state_dict())
    model.feed_data(train_batch(opt))
    model.optimize_parameters(1)
    grads = [p.grad for p in model.net_adapters.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    after = model.net_adapters.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_conv1x1_adapter_kind(build_model_from):
    opt = stage_opts(2, **{'network_adapters.kind': 'conv1x1'})
    model = build_model_from(opt)
    assert all(isinstance(a, torch.nn.Conv2d) for a in model.net_adapters.adapters)


def test_student_discriminator_only_in_stage3(build_model_from):
    """Ablation (f): stage 3 without the teacher discriminator."""
    opt = stage_opts(3, **{'sdakd.adversarial': ['student'], 'network_d_teacher': DELETE,
                           'path.pretrain_network_d_teacher': DELETE, 'path.param_key_d_teacher': DELETE})
    model = build_model_from(opt)
    run_iters(model, opt, 1)
    assert model.net_d_teacher is None and 'l_g_gan_dt' not in model.log_dict and 'l_g_gan_ds' in model.log_dict


def test_losses_fall_on_a_fixed_batch(build_model_from):
    opt = stage_opts(2, high_order_degradation=False)
    for key in ('optim_g', 'optim_d'):
        opt['train'][key]['lr'] = 2e-3
    torch.manual_seed(0)
    model = build_model_from(opt)
    torch.manual_seed(0)
    gt = torch.rand(2, 3, 32, 32)
    batch = {'lq': torch.nn.functional.interpolate(gt, scale_factor=0.25, mode='bicubic'), 'gt': gt}
    history = []
    for it in range(1, 41):
        model.feed_data(batch)
        model.optimize_parameters(it)
        history.append(model.log_dict)
    for term in ('l_g_pix', 'l_g_fmd'):
        first = sum(h[term] for h in history[:5]) / 5
        last = sum(h[term] for h in history[-5:]) / 5
        assert last < 0.8 * first, f'{term}: {first:.4f} -> {last:.4f}'


def test_trained_student_loads_strictly_into_a_plain_rrdbnet(build_model_from):
    from tests.helpers import STUDENT_G
    opt = stage_opts(2)
    model = build_model_from(opt)
    run_iters(model, opt, 1)
    model.save(0, 1)
    ckpt = torch.load(f'experiments/{opt["name"]}/models/net_g_1.pth')
    assert set(ckpt) == {'params', 'params_ema'}
    plain = build(STUDENT_G)
    plain.load_state_dict(ckpt['params_ema'], strict=True)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(plain(x), model.net_g_ema(x))


def test_stage0_warms_up_only_the_teacher_discriminator(build_model_from):
    opt = stage_opts(3, **{'sdakd.stage': 0, 'sdakd.adversarial': DELETE, 'train.fmd_opt': DELETE,
                           'network_adapters': DELETE, 'network_d': DELETE})
    model = build_model_from(opt)
    student_before = copy.deepcopy(model.net_g.state_dict())
    d_before = copy.deepcopy(model.net_d_teacher.state_dict())
    calls = count_forwards(model.net_g_teacher)
    run_iters(model, opt, 2)
    assert len(calls) == 2 and model.optimizers == [model.optimizer_d_teacher]
    assert set(model.log_dict) == {'l_dt_real', 'l_dt_fake', 'out_dt_real', 'out_dt_fake'}
    assert all(torch.equal(v, student_before[k]) for k, v in model.net_g.state_dict().items())
    assert any(not torch.equal(v, d_before[k]) for k, v in model.net_d_teacher.state_dict().items())


def test_init_student_from_teacher_at_full_width_copies_the_teacher(build_model_from):
    from tests.helpers import TEACHER_G
    opt = stage_opts(1, **{'sdakd.init_student_from_teacher': True, 'network_g': dict(TEACHER_G)})
    model = build_model_from(opt)
    model.feed_data(train_batch(opt))
    assert model._pending_channel_init
    model._init_student_from_teacher()
    teacher = model.net_g_teacher.state_dict()
    assert all(torch.equal(v, teacher[k]) for k, v in model.net_g.state_dict().items())
    assert all(torch.equal(v, teacher[k]) for k, v in model.net_g_ema.state_dict().items())
    model.optimize_parameters(1)  # done once: the next iteration trains, it does not re-initialise
    assert not model._pending_channel_init


def test_init_student_from_teacher_conflicts_with_a_pretrained_student(build_model_from):
    with pytest.raises(KeyError, match='keep one'):
        build_model_from(stage_opts(1, **{'sdakd.init_student_from_teacher': True,
                                          'path.pretrain_network_g': 'experiments/pretrained_models/x.pth'}))


def test_teacher_stops_at_its_last_tap_when_its_output_is_not_needed(build_model_from):
    opt = stage_opts(2)  # FMD, no output distillation
    model = build_model_from(opt)
    hr_calls = count_forwards(model.net_g_teacher.conv_hr)
    model.feed_data(train_batch(opt))
    assert model.teacher_side.forward(model.lq, None, None, need_output=False) is None
    cut = [f.clone() for f in model.teacher_side.teacher_taps.collect()]
    assert hr_calls == []  # the HR-resolution convolutions did not run
    out = model.teacher_side.forward(model.lq, None, None, need_output=True)
    assert out is not None and len(hr_calls) == 1
    assert all(torch.equal(a, b) for a, b in zip(cut, model.teacher_side.teacher_taps.collect()))  # same features
    model.optimize_parameters(1)
    assert len(hr_calls) == 1 and 'l_g_fmd' in model.log_dict


def test_teacher_runs_whole_with_output_distillation_or_when_truncation_is_off(build_model_from):
    for extra in ({'train.kd_opt.loss_weight': 1.0}, {'sdakd.truncate_teacher': False}):
        opt = stage_opts(2, **extra)
        model = build_model_from(opt)
        hr_calls = count_forwards(model.net_g_teacher.conv_hr)
        run_iters(model, opt, 1)
        assert len(hr_calls) == 1, extra


@pytest.mark.parametrize('amp', ['bf16', 'fp16'])
def test_mixed_precision_trains_every_network_in_fp32_weights(amp, build_model_from):
    opt = stage_opts(3, **{'sdakd.amp': amp})
    model = build_model_from(opt)
    before = {k: copy.deepcopy(getattr(model, k).state_dict())
              for k in ('net_g', 'net_d', 'net_d_teacher', 'net_adapters')}
    low = torch.bfloat16 if amp == 'bf16' else torch.float16
    seen = []
    model.net_g.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    run_iters(model, opt, 2)
    assert seen and all(d == low for d in seen)  # the forward ran in reduced precision ...
    for key, state in before.items():  # ... every trained network moved, and kept fp32 weights
        after = getattr(model, key).state_dict()
        assert all(v.dtype == torch.float32 for v in after.values() if v.is_floating_point())
        assert any(not torch.equal(state[k], after[k]) for k in state), key
    assert all(torch.isfinite(torch.tensor(v)) for v in model.log_dict.values())
    assert len(model.precision.scalers) == (3 if amp == 'fp16' else 0)


def test_unknown_amp_mode(build_model_from):
    with pytest.raises(ValueError, match="sdakd.amp must be ~, bf16 or fp16, got 'fp8'"):
        build_model_from(stage_opts(2, **{'sdakd.amp': 'fp8'}))


def test_half_precision_teacher_hands_on_fp32_features_outside_autograd(build_model_from):
    opt = stage_opts(2, **{'sdakd.teacher_dtype': 'bf16'})
    model = build_model_from(opt)
    reference = build_model_from(stage_opts(2))
    assert all(p.dtype == torch.bfloat16 for p in model.net_g_teacher.parameters())
    ran_in = []
    model.net_g_teacher.conv_first.register_forward_hook(lambda m, i, out: ran_in.append(out.dtype))
    model.feed_data(train_batch(opt, seed=1))
    reference.lq = model.lq.clone()  # the synthesis is random: the same LR for both
    for m in (model, reference):
        m.teacher_side.forward(m.lq, None, None, need_output=False)
    assert ran_in == [torch.bfloat16]
    half, full = model.teacher_side.teacher_taps.collect(), reference.teacher_side.teacher_taps.collect()
    for h, f in zip(half, full):
        assert h.dtype == torch.float32 and not h.requires_grad and h.grad_fn is None
        assert (h - f).norm() < 0.02 * f.norm()  # bf16 rounding, not a different network
    out = model.teacher_side.forward(model.lq, None, None, need_output=True)
    assert out.dtype == torch.float32
    run_iters(model, opt, 2)  # trains: the student and adapters stay fp32
    assert all(p.dtype == torch.float32 for p in model.net_g.parameters())
    assert torch.isfinite(torch.tensor(model.log_dict['l_g_fmd']))


def test_teacher_activations_stay_out_of_autograd(build_model_from):
    opt = stage_opts(2, **{'train.kd_opt.loss_weight': 1.0})
    model = build_model_from(opt)
    model.feed_data(train_batch(opt, seed=1))
    out = model.teacher_side.forward(model.lq, None, None, need_output=True)
    assert out.grad_fn is None and all(f.grad_fn is None for f in model.teacher_side.teacher_taps.collect())


def test_channels_last_trains_like_the_default_layout(build_model_from):
    results = {}
    for layout in (False, True):
        opt = stage_opts(3, **{'sdakd.channels_last': layout})
        torch.manual_seed(0)
        model = build_model_from(opt)
        run_iters(model, opt, 2)
        results[layout] = model
    fast, plain = results[True], results[False]
    for key in ('net_g', 'net_d', 'net_d_teacher', 'net_g_teacher'):
        weight = getattr(fast, key).state_dict()
        conv = next(v for k, v in weight.items() if v.dim() == 4)
        assert conv.is_contiguous(memory_format=torch.channels_last), key
    assert fast.lq.is_contiguous(memory_format=torch.channels_last)
    for key in ('net_g', 'net_d', 'net_adapters'):
        a, b = getattr(fast, key).state_dict(), getattr(plain, key).state_dict()
        diff = max((a[k] - b[k]).abs().max().item() for k in a if a[k].is_floating_point())
        assert diff < 1e-5, f'{key}: channels_last changed the training by {diff}'


def test_bad_precision_and_layout_options(build_model_from):
    with pytest.raises(ValueError, match="sdakd.teacher_dtype must be fp32, bf16 or fp16, got 'half'"):
        build_model_from(stage_opts(2, **{'sdakd.teacher_dtype': 'half'}))
    with pytest.raises(ValueError, match="sdakd.channels_last must be true or false, got 'yes'"):
        build_model_from(stage_opts(2, **{'sdakd.channels_last': 'yes'}))


def test_fp16_grad_scaler_state_is_saved_and_resumed(build_model_from):
    import os
    opt = stage_opts(3, **{'sdakd.amp': 'fp16'})
    model = build_model_from(opt)
    run_iters(model, opt, 1)
    for i, optimizer in enumerate(model.optimizers):  # distinct, non-default scales
        model.precision.scalers[id(optimizer)].update(new_scale=2.0 ** (4 + i))
    model.save_training_state(0, 1)
    state = torch.load(os.path.join(model.opt['path']['training_states'], '1.state'))
    assert [s['scale'] for s in state['grad_scalers']] == [16.0, 32.0, 64.0]
    resumed = build_model_from(opt)
    resumed.resume_training(state)
    assert [resumed.precision.scalers[id(o)].get_scale() for o in resumed.optimizers] == [16.0, 32.0, 64.0]
    plain = build_model_from(stage_opts(3))
    run_iters(plain, stage_opts(3), 1)
    plain.save_training_state(0, 1)
    fresh = build_model_from(opt)
    old = torch.load(os.path.join(plain.opt['path']['training_states'], '1.state'))
    with pytest.raises(ValueError, match=r"sdakd.amp: '<absent>' -> 'fp16'"):  # amp changed at resume: refused
        fresh.resume_training(old)
    del old['options']  # a state written before options were saved: resumed, without scaler state (warns)
    fresh.resume_training(old)
    assert [fresh.precision.scalers[id(o)].get_scale() for o in fresh.optimizers] == [65536.0] * 3


@pytest.mark.parametrize('stage,once', [(1, True), (2, False), (2, True)])
def test_sharpened_gt_travels_with_the_queue(stage, once, build_model_from):
    """One USM pass per batch when the sharpened GT is pooled (stage 1's default, as RealESRNet), two as in
    Real-ESRGAN otherwise; either way every dequeued GT keeps its own sharpened version."""
    extra = {'gt_size': 96} if stage == 1 else {'gt_size': 96, 'sdakd.sharpen_gt_once': once}
    opt = stage_opts(stage, **extra)  # no crop after the dataset's 96 px: usm(full GT) == usm(crop)
    model = build_model_from(opt)
    usm = model.usm_sharpener.usm if once else model.usm_sharpener
    calls = count_forwards(usm)
    incoming = []
    for it in range(1, 5):  # queue of 4, batch 2: dequeued pairs come from earlier batches from iteration 2 on
        batch = train_batch(opt, seed=it)
        incoming.append(batch['gt'])
        model.feed_data(batch)
        with torch.no_grad():
            assert torch.allclose(model.gt_usm, usm(model.gt), atol=1e-6)
    assert len(calls) == 4 * (1 if once else 2) + 4  # per batch, plus the check above
    assert not torch.equal(model.gt, incoming[-1])  # the queue really shuffled pairs in


def test_bad_sharpen_option(build_model_from):
    with pytest.raises(ValueError, match="sdakd.sharpen_gt_once must be true or false, got 1"):
        build_model_from(stage_opts(2, **{'sdakd.sharpen_gt_once': 1}))


def d_distill_opts(stage=2, weight=10.0, **extra):
    return stage_opts(stage, **{
        'network_d_teacher': {'type': 'UNetDiscriminatorSN', 'num_in_ch': 3, 'num_feat': 8, 'skip_connection': True},
        'path.pretrain_network_d_teacher': TEACHER_D_FILE, 'path.param_key_d_teacher': 'params',
        'train.d_distill_opt': {'type': 'MSELoss', 'loss_weight': weight}, 'train.optim_d.lr': 1e-3, **extra})


def test_student_discriminator_distilled_from_the_teacher_discriminator(build_model_from):
    gaps = {}
    probe = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    for weight in (0.0, 10.0):
        opt = d_distill_opts(weight=weight)
        torch.manual_seed(0)
        model = build_model_from(opt)
        d_teacher = copy.deepcopy(model.net_d_teacher.state_dict())
        assert not model.net_d_teacher.training and model.optimizers[-1] is model.optimizer_d
        run_iters(model, opt, 8)
        assert ('l_ds_distill_real' in model.log_dict) is (weight > 0)
        after = model.net_d_teacher.state_dict()  # D_T frozen: weights and spectral-norm buffers untouched
        assert all(torch.equal(after[k], v) for k, v in d_teacher.items())
        model.net_d.eval()
        with torch.no_grad():
            gaps[weight] = torch.nn.functional.mse_loss(model.net_d(probe), model.net_d_teacher(probe)).item()
    assert gaps[10.0] < 0.5 * gaps[0.0], gaps  # D_S's logits moved towards D_T's on unseen inputs


def test_discriminator_distillation_needs_a_trained_student_d_and_a_teacher_d(build_model_from):
    with pytest.raises(KeyError, match='does not train D_S'):
        build_model_from(d_distill_opts(stage=1, **{'train.optim_d': DELETE}))  # stage 1's file has no D_S
    with pytest.raises(KeyError, match='needs the teacher discriminator: set `network_d_teacher`'):
        build_model_from(stage_opts(2, **{'train.d_distill_opt': {'type': 'MSELoss', 'loss_weight': 1.0}}))


def test_gradient_norm_diagnostic_is_logged_and_changes_no_weight(build_model_from):
    results = {}
    for on in (False, True):
        opt = stage_opts(3, **{'sdakd.log_grad_norms': on, 'train.kd_opt': {'type': 'L1Loss', 'loss_weight': 1.0}})
        torch.manual_seed(0)
        model = build_model_from(opt)
        run_iters(model, opt, 2)
        results[on] = model
    log = results[True].log_dict
    for key in ('grad_l_g_gan_ds', 'grad_l_g_gan_dt', 'grad_l_g_kd'):
        assert key in log and 0 < float(log[key]) < float('inf'), key
    assert not any(k.startswith('grad_') for k in results[False].log_dict)
    for key in ('net_g', 'net_d', 'net_d_teacher', 'net_adapters'):
        a, b = getattr(results[True], key).state_dict(), getattr(results[False], key).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), f'{key} changed with the diagnostic on'
