"""Mistakes that used to surface in iteration 1 (or not at all) are named at start-up, by mechanism: tap modules
that run more than once per forward pass, crops that are not multiples of the scale, keys basicsr's own dataset
classes need, a GT folder without images, and a scalar or a string where a list or a mapping is meant."""
import os

import pytest
import torch

from sdakd_basicsr.distill.preflight import check_options
from sdakd_basicsr.models.teacher_side import TeacherSide

from tests.helpers import STUDENT_G, TEACHER_G, build, tiny_options


def preflight(opt):
    check_options(opt, 'opt.yml', os.getcwd())


def test_a_tap_on_a_module_that_runs_several_times_is_refused():
    torch.manual_seed(0)
    teacher, student = build(TEACHER_G), build(STUDENT_G)
    side = TeacherSide(teacher, student, ['body.0', 'lrelu'], ['body.0', 'lrelu'])  # lrelu: shared activation
    with pytest.raises(ValueError, match=r'in the teacher generator, lrelu ran \d+ times in one forward pass'):
        side.tap_channels(STUDENT_G, 'cpu')
    ok = TeacherSide(teacher, student, ['body.0', 'conv_body'], ['body.0', 'conv_body'])
    assert ok.tap_channels(STUDENT_G, 'cpu') == [(4, 8), (4, 8)]


@pytest.mark.parametrize('key, value', [('datasets.train.gt_size', 62), ('datasets.train.crop_pad_size', 98),
                                        ('gt_size', 66)])
def test_crops_that_are_not_multiples_of_the_scale_are_named(workdir, key, value):
    opt = tiny_options(1, **{key: value})
    with pytest.raises(ValueError, match=rf'opt.yml: {key.replace(".", "[.]")} is {value}, not a multiple of the '
                                         r'scale 4.*use \d+ or \d+'):
        preflight(opt)


def test_a_key_that_basicsr_dataset_classes_need_is_named(workdir):
    opt = tiny_options(1)
    train = opt['datasets']['train']
    train['type'] = 'RealESRGANDataset'  # basicsr's own class: reads meta_info on the disk backend
    train.pop('crop_pad_size', None)
    with pytest.raises(ValueError, match=r'datasets.train.meta_info is required by RealESRGANDataset'):
        preflight(opt)


def test_a_gt_folder_without_images_is_named_as_such(workdir):
    os.makedirs('datasets/notes')
    open('datasets/notes/README.txt', 'w').write('no images here')
    opt = tiny_options(1, **{'datasets.train.dataroot_gt': 'datasets/notes'})
    with pytest.raises(ValueError, match=r'datasets.train.dataroot_gt: datasets/notes holds no images .*README.txt'):
        preflight(opt)


@pytest.mark.parametrize('key, value, match', [
    ('sdakd.taps', 'body.0', r'sdakd.taps must be a list, e.g. `taps: \[body.0\]`'),
    ('train.optim_g.betas', 0.9, r'train.optim_g.betas must be a list such as'),
    ('train.scheduler.milestones', 100, r'train.scheduler.milestones must be a list of iterations'),
    ('datasets', 'train', r'datasets must be a mapping'),
    ('network_d', 'UNetDiscriminatorSN', r'network_d must be a mapping'),
])
def test_a_scalar_where_a_list_or_mapping_is_meant_is_named(workdir, key, value, match):
    with pytest.raises((KeyError, ValueError), match=match):
        preflight(tiny_options(2, **{key: value}))


def test_full_decode_names_a_truncated_image_before_iteration_1(workdir, capsys):
    import cv2
    import numpy as np
    img = (np.random.default_rng(0).uniform(0, 255, (96, 96, 3))).astype(np.uint8)
    cv2.imwrite('datasets/gt/img03.jpg', img)
    data = open('datasets/gt/img03.jpg', 'rb').read()
    open('datasets/gt/img03.jpg', 'wb').write(data[:len(data) // 2])  # header intact, body cut
    opt = tiny_options(1)
    with pytest.raises(ValueError, match=r'datasets.train: datasets/gt/img03.jpg is a truncated JPEG \(its '
                       r'end-of-image marker FFD9 is missing'):
        preflight(opt)  # the default: every file's end marker is checked (no decoding)
    opt['sdakd']['data'] = {'verify_images': 'all'}
    with pytest.raises(ValueError, match=r'datasets.train: datasets/gt/img03.jpg cannot be decoded'):
        preflight(opt)
    os.remove('datasets/gt/img03.jpg')
    preflight(opt)
    assert 'verify_images: all 4 training images decode' in capsys.readouterr().out
    opt['sdakd']['data'] = {'verify_images': 'all', 'verify_time_limit_s': 1e-9}  # the cap: stops, says so
    preflight(opt)
    assert 'time limit 1e-09 s reached after 1 of 4 images' in capsys.readouterr().out
    opt['sdakd']['data'] = {'verify_images': 'every'}
    with pytest.raises(ValueError, match=r'sdakd.data.verify_images must be'):
        preflight(opt)


def test_file_ends_find_truncated_jpegs_and_pngs_without_decoding(tmp_path):
    import cv2
    import numpy as np

    from sdakd_basicsr.distill.data_checks import truncation_of
    img = (np.random.default_rng(0).uniform(0, 255, (64, 64, 3))).astype(np.uint8)
    for ext, kind in (('.jpg', 'JPEG'), ('.png', 'PNG')):
        path = str(tmp_path / f'a{ext}')
        cv2.imwrite(path, img)
        data = open(path, 'rb').read()
        assert truncation_of(path) is None
        open(path, 'wb').write(data + b'\0' * 100)  # padding after the end marker: still complete
        assert truncation_of(path) is None
        for cut in (len(data) // 3, len(data) - 5):
            open(path, 'wb').write(data[:cut])
            assert f'is a truncated {kind}' in truncation_of(path)
    open(tmp_path / 'b.bmp', 'wb').write(b'BM' + b'\0' * 10)  # other formats: not judged here
    assert truncation_of(str(tmp_path / 'b.bmp')) is None


def test_every_truncated_training_image_is_named_at_start_up(workdir):
    import cv2
    import numpy as np
    img = (np.random.default_rng(1).uniform(0, 255, (96, 96, 3))).astype(np.uint8)
    for i in range(5):
        cv2.imwrite(f'datasets/gt/late_{i}.png', img)
        data = open(f'datasets/gt/late_{i}.png', 'rb').read()
        open(f'datasets/gt/late_{i}.png', 'wb').write(data[:-20])
    with pytest.raises(ValueError, match=r'late_0.png is a truncated PNG .*late_1.png.*late_2.png.* \(and 2 more\); '
                       r'replace or remove'):
        preflight(tiny_options(1))
