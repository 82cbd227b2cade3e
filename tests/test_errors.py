"""Bad input fails at model construction (before the first iteration) with a message naming the key or file."""
import os

import pytest
import torch

from tests.helpers import DELETE, TEACHER_G_FILE, tiny_options

NO_PREV = {'path.pretrain_network_g': None, 'path.pretrain_network_d': None, 'path.pretrain_network_adapters': None}


def opts(stage, **extra):
    return tiny_options(stage, **{**NO_PREV, **extra})


def test_missing_teacher_names_the_official_download(build_model_from):
    os.remove(TEACHER_G_FILE)
    with pytest.raises(FileNotFoundError) as err:
        build_model_from(opts(2))
    msg = str(err.value)
    assert 'sdakd.teacher_g.path' in msg and TEACHER_G_FILE in msg
    assert 'releases/download/v0.1.0/RealESRGAN_x4plus.pth' in msg


def test_missing_teacher_discriminator_names_the_official_download(build_model_from):
    os.remove('experiments/pretrained_models/RealESRGAN_x4plus_netD.pth')
    with pytest.raises(FileNotFoundError, match=r'path.pretrain_network_d_teacher.*v0.2.2.3/RealESRGAN_x4plus_netD'):
        build_model_from(opts(3))


def test_missing_previous_stage_names_the_option_file_that_writes_it(build_model_from):
    with pytest.raises(FileNotFoundError) as err:
        build_model_from(tiny_options(2))  # stage 1 never ran
    msg = str(err.value)
    assert 'path.pretrain_network_g' in msg and 'sdakd_realesrgan_x4_w0.5_stage1/models/net_g_latest.pth' in msg
    assert 'options/sdakd_realesrgan_stage1.yml' in msg


def test_checkpoint_of_another_width_is_rejected_with_the_mismatch(run_train, build_model_from):
    run_train(tiny_options(1, total_iter=1, **{'path.pretrain_network_g': None}))  # width 1/2
    opt = tiny_options(2, **{'network_g.num_feat': 2, 'network_g.num_grow_ch': 1})  # width 1/4 student
    with pytest.raises(ValueError) as err:
        build_model_from(opt)
    msg = str(err.value)
    assert 'does not fit RRDBNet' in msg and 'conv_first.weight: checkpoint (4, 3, 3, 3) vs network (2, 3, 3, 3)' in msg


def test_teacher_of_the_wrong_size_is_rejected(build_model_from):
    opt = opts(2, **{'sdakd.teacher_g.network.num_feat': 16})
    with pytest.raises(ValueError, match=r'sdakd.teacher_g: .*RealESRGAN_x4plus.pth \[params_ema\] does not fit'):
        build_model_from(opt)


def test_wrong_param_key_lists_the_keys_in_the_file(build_model_from):
    opt = opts(2, **{'sdakd.teacher_g.param_key': 'g_ema'})
    torch.save({'weights': {}}, TEACHER_G_FILE)
    with pytest.raises(ValueError, match=r"sdakd.teacher_g: .* has no 'g_ema' entry; its entries: \['weights'\]"):
        build_model_from(opt)


def test_unknown_tap_lists_the_valid_names(build_model_from):
    with pytest.raises(KeyError) as err:
        build_model_from(opts(2, **{'sdakd.taps': ['body.0', 'body.7']}))
    msg = str(err.value)
    assert "['body.7']" in msg and 'body.1' in msg and 'conv_body' in msg


def test_taps_with_different_spatial_sizes_are_rejected(build_model_from):
    with pytest.raises(ValueError, match='spatial size'):
        build_model_from(opts(2, **{'sdakd.taps': ['conv_up1'], 'sdakd.student_taps': ['conv_body']}))


def test_stage_needing_a_discriminator_that_is_not_configured(build_model_from):
    with pytest.raises(KeyError, match=r'needs the student discriminator .* `network_d` is not configured'):
        build_model_from(opts(2, network_d=DELETE))
    with pytest.raises(KeyError, match=r'`network_d_teacher` is not configured'):
        build_model_from(opts(3, network_d_teacher=DELETE, **{'path.pretrain_network_d_teacher': DELETE,
                                                              'path.param_key_d_teacher': DELETE}))
    with pytest.raises(KeyError, match=r'train.optim_d_teacher is not configured'):
        build_model_from(opts(3, **{'train.optim_d_teacher': DELETE}))


def test_queue_size_not_divisible_by_batch(build_model_from):
    with pytest.raises(ValueError, match='queue_size 5 must be divisible by datasets.train.batch_size_per_gpu 2'):
        build_model_from(opts(1, queue_size=5))


def test_unknown_sdakd_key_is_an_error(build_model_from):
    with pytest.raises(KeyError, match=r"sdakd.train_d_teacherr: unknown key \(did you mean 'train_d_teacher'\?\)"):
        build_model_from(opts(3, **{'sdakd.train_d_teacherr': False}))


def test_unknown_train_loss_key_is_an_error(build_model_from):
    # the whole-file check (KeyError from the sdakd/train schema, OptionError from the file schema) names it
    with pytest.raises((KeyError, ValueError), match=r"train.fmd_otp: unknown key \(did you mean 'fmd_opt'\?\)"):
        build_model_from(opts(2, **{'train.fmd_otp': {'type': 'FeatureMapDistillLoss'}}))


def test_fmd_without_adapters_and_adapters_without_fmd(build_model_from):
    with pytest.raises(KeyError, match='`network_adapters` is not configured'):
        build_model_from(opts(2, network_adapters=DELETE))
    with pytest.raises(KeyError, match='the adapters would never train'):
        build_model_from(opts(2, **{'train.fmd_opt': DELETE}))


def test_bad_stage_and_bad_discriminator_names(build_model_from):
    with pytest.raises(ValueError, match=r'sdakd.stage must be 0 \(teacher-D warm-up\), 1, 2 or 3, got 4'):
        build_model_from(opts(1, **{'sdakd.stage': 4}))
    with pytest.raises(ValueError, match=r"unknown discriminator\(s\) \['studnet'\]"):
        build_model_from(opts(2, **{'sdakd.adversarial': ['studnet']}))


def test_errors_happen_before_anything_is_written(run_train):
    """A failing start must not archive or touch an existing experiment's checkpoints."""
    run_train(tiny_options(1, total_iter=1, **{'path.pretrain_network_g': None}))
    exp = 'experiments/sdakd_realesrgan_x4_w0.5_stage1/models/net_g_latest.pth'
    before = open(exp, 'rb').read()
    with pytest.raises(KeyError):
        run_train(tiny_options(1, total_iter=1, **{'path.pretrain_network_g': None, 'sdakd.bogus': 1}),
                  '--auto_resume')
    assert open(exp, 'rb').read() == before


# ------------------------------------------------------------------ whole-file checks (pre-flight, before any folder)
def preflight_error(opt) -> str:
    """The pre-flight's message for ``opt`` (it must fail)."""
    from sdakd_basicsr.distill.preflight import check_options
    with pytest.raises((KeyError, ValueError, TypeError, OSError)) as err:
        check_options(opt, 'bad.yml', os.getcwd())
    message = err.value.args[0]
    assert message.startswith('bad.yml: '), message  # every message names the file
    return message


def test_a_listed_adversary_without_weight_and_empty_taps_are_refused(workdir):
    assert 'train.gan_opt.loss_weight is 0, but sdakd.adversarial lists student' in preflight_error(
        opts(2, **{'train.gan_opt.loss_weight': 0}))
    assert 'sdakd.taps: an empty list' in preflight_error(opts(2, **{'sdakd.taps': []}))


def test_data_problems_are_named_at_start_up(workdir):
    import cv2
    import numpy as np

    # a batch larger than the training set: no iteration would ever run
    assert 'batch_size_per_gpu is 9 but the training set has 4 image(s)' in preflight_error(
        opts(1, **{'datasets.train.batch_size_per_gpu': 9}))
    # a meta-info entry that names no file
    with open('datasets/meta.txt', 'w') as f:
        f.write('img00.png\nimg07.png\n')
    assert 'meta.txt line 2 names datasets/gt/img07.png, which does not exist' in preflight_error(
        opts(1, **{'datasets.train.meta_info': 'datasets/meta.txt'}))
    # a corrupt image
    open('datasets/gt/img01.png', 'wb').write(b'\x89PNG\r\n\x1a\n broken')
    assert 'datasets/gt/img01.png is not a readable image' in preflight_error(opts(1))
    os.remove('datasets/gt/img01.png')
    # paired data: a crop larger than the images, and an LR/GT pair that is not x scale
    paired = {'datasets.train.type': 'PairedImageDataset', 'datasets.train.dataroot_gt': 'datasets/val/gt',
              'datasets.train.dataroot_lq': 'datasets/val/lq', 'datasets.train.crop_pad_size': DELETE,
              'datasets.train.gt_size': 64, 'high_order_degradation': False}
    for key in ('blur_kernel_size', 'kernel_list', 'kernel_prob', 'sinc_prob', 'blur_sigma', 'betag_range',
                'betap_range', 'blur_kernel_size2', 'kernel_list2', 'kernel_prob2', 'sinc_prob2', 'blur_sigma2',
                'betag_range2', 'betap_range2', 'final_sinc_prob'):
        paired[f'datasets.train.{key}'] = DELETE
    assert 'datasets.train.gt_size: the GT crop 64 is larger than datasets/val/gt/img00.png (32x32)' in \
        preflight_error(opts(1, **paired))
    cv2.imwrite('datasets/val/lq/img00.png', np.zeros((16, 16, 3), np.uint8))
    assert 'img00.png is 16x16 and its GT 32x32: not the top-level scale 4' in preflight_error(
        opts(1, **dict(paired, **{'datasets.train.gt_size': 16})))


def test_scale_and_unknown_network_arguments(workdir):
    assert 'network_g.scale is 2 but the top-level scale is 4' in preflight_error(opts(1, **{'network_g.scale': 2}))
    assert "network_g.num_fet: RRDBNet takes no such argument (did you mean 'num_feat'?)" in preflight_error(
        opts(1, **{'network_g.num_fet': 8}))
    assert "logger.print_freqq: unknown key (did you mean 'print_freq'?)" in preflight_error(
        opts(1, **{'logger.print_freqq': 1}))
    assert 'train.ema_decay must be below 1' in preflight_error(opts(1, **{'train.ema_decay': 1.0}))


def test_an_unreadable_image_during_training_names_its_file_or_is_skipped(workdir, monkeypatch):
    """Past the start-up sample (64 headers), a corrupt file is met in the loader: named (stop) or skipped."""
    from basicsr.data import build_dataset
    spec = dict(tiny_options(1)['datasets']['train'], phase='train', scale=4)
    open('datasets/gt/img02.png', 'wb').write(b'\x89PNG\r\n\x1a\n truncated')
    ds = build_dataset(spec)
    index = [i for i in range(len(ds)) if ds.paths[i].endswith('img02.png')][0]
    with pytest.raises(OSError, match=r"datasets.train .*cannot read datasets/gt/img02.png .*on_bad_image: skip"):
        ds[index]
    import logging
    warned = []
    monkeypatch.setattr(logging.getLogger('basicsr'), 'warning', warned.append)
    skipping = build_dataset(dict(spec, on_bad_image='skip'))
    item = skipping[index]  # the next readable sample instead
    assert item['gt'].shape[0] == 3 and skipping.skipped == {index}
    assert len(warned) == 1 and 'skipping unreadable datasets/gt/img02.png' in warned[0]
