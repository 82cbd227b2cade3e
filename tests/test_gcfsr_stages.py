"""GCFSR through SDAKD: face datasets, and stages 0-3 of the shipped GCFSR files through train_pipeline
(shrunk to out_size 32 and tiny widths)."""
import os
from os import path as osp

import pytest
import torch
import yaml

from sdakd_basicsr.archs.gcfsr_arch import GCFSR, GCFSR_blind

from tests.helpers import REPO, write_images

T_NARROW, S_NARROW, STYLE = 1 / 16, 1 / 32, 32  # teacher 32 channels, student 16, style size 32
TEACHER_FILES = {'gcfsr': ('experiments/pretrained_models/gcfsr-1024.pth', GCFSR, 'params_ema'),
                 'gcfsr512': ('experiments/pretrained_models/gcfsr_blind_512.pth', GCFSR_blind, None)}


@pytest.fixture
def faces(workdir):
    write_images('datasets/faces', 4, 32)
    from sdakd_basicsr.tools.make_face_valset import make_face_valset
    make_face_valset('datasets/faces', 'datasets/face_val', size=32, scales=[4, 8])
    for path, cls, key in TEACHER_FILES.values():
        torch.manual_seed(0)
        state = cls(32, num_style_feat=STYLE, narrow=T_NARROW).state_dict()
        torch.save({key: state} if key else state, path)  # the official wrappers: params_ema / raw
    return workdir


def tiny(variant, stage, total_iter=2, **extra):
    with open(osp.join(REPO, 'options', f'sdakd_{variant}_stage{stage}.yml')) as f:
        opt = yaml.safe_load(f)
    opt['num_gpu'] = 0
    opt['network_g'].update(out_size=32, num_style_feat=STYLE, narrow=S_NARROW)
    opt['sdakd']['teacher_g']['network'].update(out_size=32, num_style_feat=STYLE, narrow=T_NARROW)
    if 'network_d' in opt:
        opt['network_d'].update(out_size=32, narrow=S_NARROW)
    if 'network_d_teacher' in opt:
        opt['network_d_teacher'].update(out_size=32, narrow=T_NARROW)
    if 'taps' in opt['sdakd']:
        opt['sdakd']['taps'] = ['conv_body_down.0', 'style_convs.0', 'style_convs.1']
    opt['datasets']['train'].update(dataroot_gt='datasets/faces', out_size=32, downsample_list=[4, 8], cond_norm=8.,
                                    num_worker_per_gpu=0, batch_size_per_gpu=2, prefetch_mode=None, pin_memory=False)
    opt['datasets']['val'] = dict(name='face_val', type='GCFSRFaceValDataset', dataroot_lq='datasets/face_val/x8',
                                  dataroot_gt='datasets/face_val/gt', out_size=32, cond_norm=8.,
                                  io_backend={'type': 'disk'})
    if 'perceptual_opt' in opt['train']:
        opt['train']['perceptual_opt']['vgg_weights'] = 'random'
    opt['train'].update(total_iter=total_iter, net_d_reg_every=2)
    opt['val'].update(val_freq=total_iter, save_img=False)
    opt['logger'].update(print_freq=1, save_checkpoint_freq=total_iter, use_tb_logger=False)
    opt.update(extra)
    return opt


def test_face_dataset_draws_scales_and_conditions(faces):
    from basicsr.data import build_dataset
    opt = tiny('gcfsr', 1)['datasets']['train']
    ds = build_dataset(dict(opt, phase='train', scale=1))
    seen = set()
    for _ in range(20):
        item = ds[0]
        assert item['lq'].shape == item['gt'].shape == (3, 32, 32)
        assert item['gt'].min() >= -1 and item['gt'].max() <= 1 and item['gt'].min() < 0
        seen.add(round(item['in_size'].item(), 3))
    assert seen == {0.5, 1.0}  # scales 4 and 8 over cond_norm 8


def test_face_val_dataset_infers_the_scale(faces):
    from basicsr.data import build_dataset
    opt = tiny('gcfsr', 1)['datasets']['val']
    item = build_dataset(dict(opt, phase='val', scale=1))[0]
    assert item['lq'].shape == item['gt'].shape == (3, 32, 32) and item['in_size'].item() == 1.0  # x8 / 8
    with pytest.raises(ValueError, match=r'scale 8 .*allowed: \[4\]'):
        build_dataset(dict(opt, phase='val', scale=1, scales=[4]))[0]
    opt_bad = dict(opt, phase="val", scale=1, out_size=30)  # 30 / 4 px is no integer scale
    with pytest.raises(ValueError, match='integer scale'):
        build_dataset(opt_bad)[0]


@pytest.mark.parametrize('variant', ['gcfsr', 'gcfsr512'])
def test_gcfsr_stages_0_to_3_run_through_the_pipeline(faces, variant, run_train):
    for stage in range(4):
        exp = run_train(tiny(variant, stage))
        models = sorted(os.listdir(osp.join(exp, 'models')))
        assert ('net_d_teacher_latest.pth' in models) == (stage in (0, 3))
        assert ('net_adapters_latest.pth' in models) == (stage >= 2)
    log = open([osp.join(exp, f) for f in os.listdir(exp) if f.startswith('train_')][0]).read()
    assert 'l_dt_r1' in log and 'l_ds_r1' in log and 'psnr_teacher' in log  # lazy R1 ran on both discriminators


def test_gcfsr_taps_match_in_size_and_scale_channels_by_the_width(faces, build_model_from):
    opt = tiny('gcfsr', 2, **{'path': {'pretrain_network_g': None, 'resume_state': None}})
    model = build_model_from(opt)
    # teacher 32 channels at every tapped resolution, student 16
    assert model.net_adapters.channels == [(16, 32)] * 3


def test_teacher_and_student_share_the_noise_and_condition(faces, build_model_from):
    opt = tiny('gcfsr', 2, **{'path': {'pretrain_network_g': None, 'resume_state': None}})
    model = build_model_from(opt)
    seen = {}
    for name, net in (('teacher', model.net_g_teacher), ('student', model.net_g)):
        net.register_forward_pre_hook(lambda m, args, kwargs, n=name: seen.__setitem__(n, (args, kwargs)),
                                      with_kwargs=True)
    from basicsr.data import build_dataset
    ds = build_dataset(dict(opt['datasets']['train'], phase='train', scale=1))
    batch = {k: torch.stack([ds[i][k] for i in range(2)]) for k in ('lq', 'gt', 'in_size')}
    model.feed_data(batch)
    model.optimize_parameters(1)
    (t_args, t_kw), (s_args, s_kw) = seen['teacher'], seen['student']
    assert torch.equal(t_args[1], s_args[1]) and t_args[1].shape == (2, 1)
    assert len(t_kw['noise']) == 3 and all(a is b for a, b in zip(t_kw['noise'], s_kw['noise']))


def test_stage3_without_the_warmed_up_teacher_discriminator_names_stage0(faces, build_model_from):
    opt = tiny('gcfsr', 3)
    opt['path'] = {'pretrain_network_d_teacher': opt['path']['pretrain_network_d_teacher'], 'resume_state': None}
    with pytest.raises(FileNotFoundError, match=r'options/sdakd_gcfsr_stage0.yml'):
        build_model_from(opt)


def test_lazy_regularisation_correction_of_the_optimizers(faces, build_model_from):
    opt = tiny('gcfsr', 3, **{'path': {'resume_state': None}})
    model = build_model_from(dict(opt, path={'resume_state': None}))
    g, d = model.optimizer_g.param_groups[0], model.optimizer_d.param_groups[0]
    assert g['lr'] == pytest.approx(2e-3 * 4 / 5) and g['betas'] == pytest.approx((0, 0.99**0.8))
    every = opt['train']['net_d_reg_every']  # 2 in these tiny runs (16 in the shipped files)
    ratio = every / (every + 1)
    assert d['lr'] == pytest.approx(2e-3 * ratio) and d['betas'] == pytest.approx((0, 0.99**ratio))


def test_gcfsr_channels_last_is_refused_with_the_reason(faces, build_model_from):
    sd = dict(tiny('gcfsr', 2)['sdakd'], channels_last=True)
    with pytest.raises(ValueError, match='sdakd.channels_last: GCFSR uses StyleGAN2 modulated convolutions'):
        build_model_from(tiny('gcfsr', 2, **{'sdakd': sd, 'path': {'pretrain_network_g': None, 'resume_state': None}}))


def test_gcfsr_stage3_with_bf16_autocast_half_teacher_and_lazy_r1(faces, run_train):
    sd = dict(tiny('gcfsr', 3)['sdakd'], amp='bf16', teacher_dtype='bf16')
    exp = run_train(tiny('gcfsr', 3, **{'sdakd': sd, 'path': {'resume_state': None}}))
    log = open([osp.join(exp, f) for f in os.listdir(exp) if f.startswith('train_')][0]).read()
    assert 'l_ds_r1' in log and 'nan' not in log.split('Start training')[1]
