"""The texture terms (losses/texture_loss.py, models/d_features.py) and the cheaper adversarial stage: what each loss
sees and ignores, that it moves a blurred image towards the target's texture, and how the model wires them."""
import copy

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from basicsr.archs.discriminator_arch import UNetDiscriminatorSN

from sdakd_basicsr.losses.texture_loss import (ArtifactGuardLoss, FeatureMatchLoss, FourierAmplitudeLoss, PatchSWDLoss,
                                               WaveletBandLoss, haar_bands)
from sdakd_basicsr.metrics.quality import high_frequency_energy
from sdakd_basicsr.models.d_features import DiscriminatorFeatures

from tests.helpers import tiny_options, train_batch

NO_PREV = {'path.pretrain_network_g': None, 'path.pretrain_network_d': None, 'path.pretrain_network_adapters': None}


def textured(seed=0, size=64, batch=2):
    """Smooth colour fields with fine random texture on top: a target with high-frequency energy."""
    g = torch.Generator().manual_seed(seed)
    smooth = F.interpolate(torch.rand(batch, 3, 6, 6, generator=g), size=(size, size), mode='bicubic',
                           align_corners=False)
    return (smooth + 0.15 * torch.randn(batch, 3, size, size, generator=g)).clamp(0, 1)


def blurred(x, sigma=1.5):
    k = torch.arange(-4, 5, dtype=torch.float32)
    k = torch.exp(-k**2 / (2 * sigma**2))
    k = (k / k.sum()).view(1, 1, 1, -1).repeat(3, 1, 1, 1)
    x = F.conv2d(F.pad(x, (4, 4, 0, 0), mode='reflect'), k, groups=3)
    return F.conv2d(F.pad(x, (0, 0, 4, 4), mode='reflect'), k.transpose(-1, -2), groups=3)


def hf_energy(x):
    return np.mean([high_frequency_energy((img.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8))
                    for img in x])


OUTPUT_LOSSES = {
    'wavelet': lambda: WaveletBandLoss(levels=2),
    'fourier': lambda: FourierAmplitudeLoss(min_frequency=0.25),
    'swd': lambda: PatchSWDLoss(patch_size=5, num_projections=32, scales=[1, 2]),
}


@pytest.mark.parametrize('name', sorted(OUTPUT_LOSSES))
def test_zero_on_the_target_and_positive_on_a_blurred_copy(name):
    loss, target = OUTPUT_LOSSES[name](), textured()
    assert float(loss(target.clone(), target)) == pytest.approx(0, abs=1e-6)
    assert float(loss(blurred(target), target)) > 1e-3


@pytest.mark.parametrize('name', sorted(OUTPUT_LOSSES))
def test_optimising_a_blurred_image_restores_the_targets_texture(name):
    """A loss that rewards the teacher's texture raises the high-frequency energy of a blurred start towards the
    target's, and falls while doing it."""
    torch.manual_seed(0)
    loss, target = OUTPUT_LOSSES[name](), textured()
    image = blurred(target).clone().requires_grad_(True)
    opt = torch.optim.Adam([image], lr=0.01)
    first = float(loss(image, target).detach())
    for _ in range(60):
        opt.zero_grad()
        loss(image, target).backward()
        opt.step()
    last = float(loss(image, target))
    before, after, wanted = hf_energy(blurred(target)), hf_energy(image.detach()), hf_energy(target)
    assert last < 0.5 * first
    assert after - before > 0.3 * (wanted - before), (before, after, wanted)


def test_wavelet_detail_bands_ignore_a_brightness_shift_unless_the_low_band_is_weighted():
    target = textured()
    shifted = (target + 0.1)
    assert float(WaveletBandLoss(levels=2)(shifted, target)) == pytest.approx(0, abs=1e-6)
    assert float(WaveletBandLoss(levels=2, low_weight=1.0)(shifted, target)) > 0.05


def test_gaussian_blur_keeps_a_constant_and_removes_fine_detail():
    from sdakd_basicsr.losses.texture_loss import gaussian_blur
    flat = torch.full((1, 3, 16, 16), 0.4)
    assert torch.allclose(gaussian_blur(flat, 1.0), flat, atol=1e-6)
    x = textured()
    assert float((x - gaussian_blur(x, 1.0)).abs().mean()) > 0.05
    swd = PatchSWDLoss(patch_size=5, num_projections=16, scales=[1], detail_sigma=1.0)
    assert float(swd(x + 0.2, x)) < 1e-5  # the detail layer ignores a brightness shift


def test_haar_bands_are_orthonormal():
    x = torch.randn(1, 3, 8, 8)
    bands = haar_bands(x)
    assert sum(float(b.pow(2).sum()) for b in bands) == pytest.approx(float(x.pow(2).sum()), rel=1e-5)


def test_fourier_amplitude_and_patch_swd_forgive_a_shift_that_l1_punishes():
    target = textured(size=64)
    shifted = torch.roll(target, shifts=(3, 5), dims=(-2, -1))
    l1 = float(F.l1_loss(shifted, target))
    assert float(FourierAmplitudeLoss()(shifted, target)) < 1e-5  # a circular shift changes only the phase
    swd = PatchSWDLoss(patch_size=5, num_projections=32, scales=[1])
    assert float(swd(shifted, target)) < 0.5 * float(swd(blurred(target), target))  # only the seam's patches differ
    assert l1 > 0.05


def test_patch_swd_is_reproducible_from_its_seed_and_leaves_the_global_rng_alone():
    a, b = textured(1), textured(2)
    torch.manual_seed(5)
    state = torch.get_rng_state()
    v1 = float(PatchSWDLoss(seed=3)(a, b))
    assert torch.equal(torch.get_rng_state(), state)
    assert float(PatchSWDLoss(seed=3)(a, b)) == v1
    assert float(PatchSWDLoss(seed=4)(a, b)) != v1


@pytest.mark.parametrize('make, message', [
    (lambda: WaveletBandLoss(levels=0), 'WaveletBandLoss.levels'),
    (lambda: WaveletBandLoss(levels=2, level_weights=[1]), 'level_weights'),
    (lambda: WaveletBandLoss(criterion='huber'), 'WaveletBandLoss.criterion'),
    (lambda: FourierAmplitudeLoss(min_frequency=2), 'min_frequency'),
    (lambda: PatchSWDLoss(patch_size=0), 'PatchSWDLoss.patch_size'),
    (lambda: PatchSWDLoss(scales=[]), 'PatchSWDLoss.scales'),
    (lambda: ArtifactGuardLoss(window=4), 'ArtifactGuardLoss.window'),
    (lambda: FeatureMatchLoss(criterion='kl'), 'FeatureMatchLoss.criterion'),
])
def test_bad_loss_arguments_name_the_argument(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_too_small_images_are_named():
    with pytest.raises(ValueError, match='WaveletBandLoss: 3 levels'):
        WaveletBandLoss(levels=3)(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match='smaller than one 7x7 patch'):
        PatchSWDLoss(scales=[1])(torch.rand(1, 3, 5, 5), torch.rand(1, 3, 5, 5))


def test_artifact_guard_weighs_only_where_the_ema_is_closer_and_the_residual_varies():
    target = textured()
    noisy = target.clone()
    noisy[..., :32, :] += 0.3 * torch.randn_like(noisy[..., :32, :])  # artifacts in the top half only
    loss = ArtifactGuardLoss()
    ema_better = loss.artifact_map(noisy, target, target)  # the EMA matches the target everywhere
    assert float(ema_better[..., 4:28, :].mean()) > 100 * float(ema_better[..., 36:, :].mean()) + 1e-12
    assert float(loss.artifact_map(noisy, target, noisy).abs().sum()) == 0  # the EMA no closer: no weight
    assert float(loss(noisy, target, target)) > 0
    grad_image = noisy.clone().requires_grad_(True)
    loss(grad_image, target, target).backward()
    assert float(grad_image.grad[..., :28, :].abs().sum()) > 0


def test_discriminator_features_match_without_touching_the_discriminator():
    torch.manual_seed(0)
    d = UNetDiscriminatorSN(3, num_feat=8)
    d.train()
    before = {k: v.clone() for k, v in d.state_dict().items()}
    for p in d.parameters():
        p.requires_grad = False
    feats = DiscriminatorFeatures(d)
    loss = FeatureMatchLoss()
    teacher_out = textured(size=32)
    assert float(feats.term(loss, teacher_out.clone(), teacher_out)) == pytest.approx(0, abs=1e-6)
    student = blurred(teacher_out).requires_grad_(True)
    value = feats.term(loss, student, teacher_out)
    value.backward()
    assert float(value) > 0 and float(student.grad.abs().sum()) > 0
    assert d.training  # mode restored
    assert all(torch.equal(before[k], v) for k, v in d.state_dict().items())  # spectral-norm buffers too


def test_unknown_discriminator_layer_is_named():
    with pytest.raises(KeyError, match=r'train.d_feat_opt.layers: \[.conv99.\]'):
        DiscriminatorFeatures(UNetDiscriminatorSN(3, num_feat=8), ['conv1', 'conv99'])


# ------------------------------------------------------------------------------------------ in the model
def stage_opts(stage, **extra):
    return tiny_options(stage, **{**NO_PREV, **extra})


def run_iters(model, opt, n, start=1):
    for it in range(start, start + n):
        model.feed_data(train_batch(opt, seed=it))
        model.optimize_parameters(it)


HF = {'type': 'WaveletBandLoss', 'loss_weight': 0.5, 'levels': 2}
SWD = {'type': 'PatchSWDLoss', 'loss_weight': 0.2, 'patch_size': 5, 'num_projections': 16}


def test_texture_terms_against_the_teacher_run_the_teacher_and_are_logged(build_model_from):
    opt = stage_opts(1, **{'train.hf_opt': HF, 'train.patch_opt': SWD, 'train.perceptual_opt': None})
    model = build_model_from(opt)
    assert model.sd.policy.teacher_forward and model.sd.policy.needs_teacher_output
    assert 'L_hf' in model.sd.policy.describe() and 'L_patch' in model.sd.policy.describe()
    run_iters(model, opt, 2)
    assert {'l_g_hf', 'l_g_patch', 'l_g_pix'} <= set(model.log_dict)


def test_texture_terms_against_gt_need_no_teacher(build_model_from):
    opt = stage_opts(1, **{'train.hf_opt': {**HF, 'target': 'gt'}, 'train.perceptual_opt': None})
    model = build_model_from(opt)
    assert not model.sd.policy.teacher_forward
    run_iters(model, opt, 1)
    assert 'l_g_hf' in model.log_dict


def test_texture_losses_fall_on_a_fixed_batch(build_model_from):
    opt = stage_opts(1, **{'train.hf_opt': {**HF, 'loss_weight': 1.0}, 'train.patch_opt': SWD,
                           'train.perceptual_opt': None, 'train.pixel_opt.loss_weight': 0.1,
                           'train.optim_g.lr': 1e-3})
    model = build_model_from(opt)
    batch = train_batch(opt, seed=3)
    logs = []
    for it in range(1, 21):
        model.feed_data(batch)
        model.optimize_parameters(it)
        logs.append({k: float(v) for k, v in model.log_dict.items()})
    for key in ('l_g_hf', 'l_g_patch'):
        assert np.mean([r[key] for r in logs[-5:]]) < 0.8 * np.mean([r[key] for r in logs[:5]]), key


def test_blend_target_goes_from_gt_to_the_teacher_over_the_stage(build_model_from):
    opt = stage_opts(1, **{'train.blend_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'teacher_share': [0, 1]},
                           'train.perceptual_opt': None, 'train.pixel_opt': None})
    model = build_model_from(opt)
    model.feed_data(train_batch(opt, seed=1))
    out = torch.rand_like(model.gt)
    teacher = torch.rand_like(model.gt)
    objective = model.objective
    kwargs = dict(fmd_term=None)
    at_start = objective.terms(out, model.gt, model.gt, teacher, progress=0.0, **kwargs)['l_g_blend']
    at_end = objective.terms(out, model.gt, model.gt, teacher, progress=1.0, **kwargs)['l_g_blend']
    assert float(at_start) == pytest.approx(float(F.l1_loss(out, model.gt)), rel=1e-5)
    assert float(at_end) == pytest.approx(float(F.l1_loss(out, teacher)), rel=1e-5)


def test_ldl_and_discriminator_features_in_stage3(build_model_from):
    opt = stage_opts(3, **{'train.ldl_opt': {'type': 'ArtifactGuardLoss', 'loss_weight': 1.0},
                           'train.d_feat_opt': {'type': 'FeatureMatchLoss', 'loss_weight': 0.1,
                                                'layers': ['conv1', 'conv2']},
                           'train.ema_decay': 0.9})
    model = build_model_from(opt)
    run_iters(model, opt, 2)
    assert {'l_g_ldl', 'l_g_d_feat'} <= set(model.log_dict)


def test_discriminators_see_the_configured_crop_and_subset_and_step_every_k(build_model_from):
    opt = stage_opts(3, **{'train.d_crop_size': 32, 'train.d_batch': 1, 'train.d_update_every': 2})
    model = build_model_from(opt)
    shapes = []
    for d in (model.net_d, model.net_d_teacher):
        d.register_forward_pre_hook(lambda _m, inputs: shapes.append(tuple(inputs[0].shape)))
    d_before = copy.deepcopy(dict(model.net_d.named_parameters()))  # spectral norm's buffers move in any pass
    run_iters(model, opt, 1, start=1)  # iteration 1: the generator's adversarial terms only
    assert shapes and all(s == (1, 3, 32, 32) for s in shapes), shapes
    assert all(torch.equal(d_before[k], v) for k, v in model.net_d.named_parameters())
    assert 'l_ds_real' not in model.log_dict
    run_iters(model, opt, 1, start=2)  # iteration 2: the discriminators step too
    assert 'l_ds_real' in model.log_dict and 'l_dt_real' in model.log_dict
    assert not all(torch.equal(d_before[k], v) for k, v in model.net_d.named_parameters())
    assert all(s == (1, 3, 32, 32) for s in shapes)


@pytest.mark.parametrize('extra, message', [
    ({'train.hf_opt': {**HF, 'target': 'hr'}}, r'train.hf_opt.target must be teacher or gt'),
    ({'train.ldl_opt': {'type': 'ArtifactGuardLoss'}, 'train.ema_decay': 0}, 'train.ldl_opt .*ema_decay'),
    ({'train.blend_opt': {'type': 'L1Loss', 'teacher_share': [0, 2]}}, r'train.blend_opt.teacher_share'),
    ({'train.d_feat_opt': {'type': 'FeatureMatchLoss'}}, r'train.d_feat_opt .*network_d_teacher'),
    ({'train.hf_opt': {**HF, 'level': 2}}, r'train.hf_opt'),
    ({'train.d_crop_size': 4}, r'train.d_crop_size must be >= 8'),
    ({'train.d_update_every': 0}, r'train.d_update_every must be >= 1'),
])
def test_bad_texture_options_fail_at_start_up_naming_the_key(extra, message, workdir):
    from sdakd_basicsr.distill.options import resolve_options
    opt = stage_opts(1, **{'train.perceptual_opt': None, **extra})
    with pytest.raises((KeyError, ValueError), match=message):
        resolve_options(dict(opt, is_train=True))


@pytest.mark.parametrize('cls, kwargs', [(FourierAmplitudeLoss, dict(min_frequency=0.25)),
                                         (PatchSWDLoss, dict(num_projections=16, scales=[1, 2], stride=2))])
def test_luma_only_texture_terms_ignore_a_chroma_change_and_still_see_blur(cls, kwargs):
    """luma_only: a change of the colour texture that keeps BT.601 luma costs nothing; losing the luma detail does."""
    loss, rgb_loss = cls(**kwargs, luma_only=True), cls(**kwargs)
    target = textured()
    y_weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    chroma_noise = 0.1 * torch.randn(target.shape, generator=torch.Generator().manual_seed(5))
    chroma_noise = chroma_noise - (chroma_noise * y_weights).sum(1, keepdim=True)  # zero luma change
    recoloured = target + chroma_noise
    assert loss(recoloured, target).item() < 1e-5 < rgb_loss(recoloured, target).item()
    assert loss(blurred(target), target).item() > 1e-3
    with pytest.raises(ValueError, match='luma_only needs RGB images'):
        loss(target[:, :1], target[:, :1])
