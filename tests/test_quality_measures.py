"""Measures that need no downloaded weights: high-frequency energy (blur vs sharpness) and chroma PSNR (colour
shifts, not brightness), as evaluate / study / the demo report them."""
import cv2
import numpy as np
import pytest
import torch
from torch import nn

from sdakd_basicsr.metrics import quality
from sdakd_basicsr.recipes.demo import check_targets


def photo(seed=0, size=96):
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.uniform(0, 255, (12, 12, 3)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    texture = rng.normal(0, 12, (size, size, 1))
    return np.clip(base + texture, 0, 255).astype(np.uint8)


def test_high_frequency_energy_orders_blur_original_and_noise():
    img = photo()
    blurred = cv2.GaussianBlur(img, (0, 0), 2)
    noisy = np.clip(img + np.random.default_rng(1).normal(0, 20, img.shape), 0, 255).astype(np.uint8)
    energies = [quality.high_frequency_energy(x) for x in (blurred, img, noisy)]
    assert energies[0] < 0.5 * energies[1] < 0.5 * energies[2]


def test_chroma_psnr_sees_colour_casts_not_brightness():
    img = photo()
    brighter = np.clip(img.astype(int) + 6, 0, 255).astype(np.uint8)
    red = img.copy()
    red[..., 0] = np.clip(img[..., 0].astype(int) + 6, 0, 255)
    assert quality.chroma_psnr(img, img) == float('inf')
    assert quality.chroma_psnr(img, brighter) > quality.chroma_psnr(img, red) + 10


class Shift(nn.Module):
    """A stand-in generator: bicubic x4 plus a constant per-channel offset (a colour cast)."""

    def __init__(self, offset):
        super().__init__()
        self.offset = nn.Parameter(torch.tensor(offset).view(1, 3, 1, 1))

    def forward(self, x):
        return nn.functional.interpolate(x, scale_factor=4, mode='bicubic', align_corners=False) + self.offset


def test_evaluate_reports_fidelity_colour_and_sharpness_against_the_teacher():
    gt = photo(size=64)
    lr = cv2.resize(gt, (16, 16), interpolation=cv2.INTER_AREA)
    generators = {'teacher': quality.network(Shift([0., 0., 0.])), 'cast': quality.network(Shift([0.05, 0., 0.])),
                  'bicubic': quality.bicubic(4)}
    res = quality.evaluate(generators, [('x.png', lr, gt)], log=lambda m: None)
    assert res['teacher']['hf_ratio'] == 1.0 and res['teacher']['psnr_teacher_cbcr'] == float('inf')
    assert res['cast']['psnr_teacher_cbcr'] < 40 and res['bicubic']['psnr_teacher_cbcr'] > 45
    assert abs(res['bicubic']['hf_ratio'] - 1) < 0.05  # the "teacher" here is bicubic too, up to clipping


def test_image_files_are_listed_from_one_list_with_named_errors(tmp_path):
    from sdakd_basicsr.metrics.images import IMAGE_EXTENSIONS, list_images
    for name in ('b.PNG', 'a.jpg', 'c.webp', 'notes.txt', '.hidden'):
        (tmp_path / name).write_bytes(b'')
    assert [p.rsplit('/', 1)[-1] for p in list_images(str(tmp_path), '--gt')] == ['a.jpg', 'b.PNG', 'c.webp']
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match=r'datasets.train.dataroot_gt: no images \(\.png.*\) in .*empty'):
        list_images(str(tmp_path / 'empty'), 'datasets.train.dataroot_gt')
    with pytest.raises(FileNotFoundError, match='--gt: folder not found: .*nowhere'):
        list_images(str(tmp_path / 'nowhere'), '--gt')
    assert '.png' in IMAGE_EXTENSIONS and all(e == e.lower() for e in IMAGE_EXTENSIONS)


def test_demo_colour_target_fails_a_colour_cast_and_passes_a_brightness_shift():
    """The demo's colour target compares chroma PSNR against bicubic's: a brightness offset (no colour change) meets
    it, a red cast of the same size does not."""
    gt = photo(size=64)
    lr = cv2.resize(gt, (16, 16), interpolation=cv2.INTER_AREA)
    generators = {'teacher': quality.network(Shift([0., 0., 0.])),
                  'bicubic': quality.network(Shift([0.01, 0.01, -0.01])),
                  'brighter': quality.network(Shift([0.03, 0.03, 0.03])), 'red': quality.network(Shift([0.03, 0., 0.]))}
    res = quality.evaluate(generators, [('x.png', lr, gt)], log=lambda m: None)
    colour = {name: [row for row in check_targets(res, name) if row[0] == 'colour'][0] for name in ('brighter', 'red')}
    assert colour['brighter'][5] and not colour['red'][5]
    assert colour['red'][2] < 0 < colour['brighter'][2]
