"""The upscale command: widths and scale read from the checkpoint, output equal to Real-ESRGAN's RealESRGANer
(same tile / pre-pad settings) for RGB, gray, RGBA and 16-bit images, names and skipping as Real-ESRGAN does."""
import importlib.util
import os
from os import path as osp

import cv2
import numpy as np
import pytest
import torch

from basicsr.archs.rrdbnet_arch import RRDBNet

from sdakd_basicsr.deploy.inference import load_upscaler, upscale
from sdakd_basicsr.tools.upscale import main

WIDTHS = dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=2, num_grow_ch=4)


def checkpoint(tmp_path, scale=4, key='params_ema'):
    torch.manual_seed(scale)
    net = RRDBNet(**WIDTHS, scale=scale)
    with torch.no_grad():  # a visible, non-trivial mapping
        net.conv_last.bias.fill_(0.3)
    path = tmp_path / f'x{scale}.pth'
    torch.save({key: net.state_dict()} if key else net.state_dict(), path)
    return str(path)


@pytest.mark.parametrize('scale, key', [(4, 'params_ema'), (2, 'params'), (1, None)])
def test_widths_depth_and_scale_come_from_the_checkpoint(tmp_path, scale, key):
    net, found, spec = load_upscaler(checkpoint(tmp_path, scale, key))
    assert found == scale and {k: spec[k] for k in WIDTHS} == WIDTHS
    x = torch.rand(1, 3, 8, 8)
    assert net(x).shape[-1] == 8 * scale


def test_not_an_rrdbnet_is_refused_with_the_file_name(tmp_path):
    path = tmp_path / 'other.pth'
    torch.save({'params': {'weight': torch.zeros(1)}}, path)
    with pytest.raises(ValueError, match='other.pth: the weights are not those of a RRDBNet or SRVGGNetCompact'):
        load_upscaler(str(path))


def images():
    rng = np.random.default_rng(0)
    smooth = cv2.resize(rng.uniform(0, 255, (5, 6, 3)).astype(np.float32), (22, 18), interpolation=cv2.INTER_CUBIC)
    bgr = np.clip(smooth, 0, 255).astype(np.uint8)
    alpha = np.clip(np.linspace(0, 255, 22)[None].repeat(18, 0), 0, 255).astype(np.uint8)
    return {'rgb': bgr, 'gray': cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY),
            'rgba': np.dstack([bgr, alpha]), 'rgb16': bgr.astype(np.uint16) * 257}


@pytest.mark.skipif(importlib.util.find_spec('realesrgan') is None, reason='realesrgan not installed')
@pytest.mark.parametrize('scale', [4, 2])
@pytest.mark.parametrize('tile, tile_pad, pre_pad, outscale, alpha_upsampler', [
    (0, 10, 0, None, 'realesrgan'), (8, 2, 3, None, 'realesrgan'), (0, 10, 2, 3.0, 'bicubic')])
def test_output_equals_realesrganer(tmp_path, scale, tile, tile_pad, pre_pad, outscale, alpha_upsampler):
    from realesrgan import RealESRGANer
    path = checkpoint(tmp_path, scale)
    reference = RealESRGANer(scale, path, model=RRDBNet(**WIDTHS, scale=scale), tile=tile, tile_pad=tile_pad,
                             pre_pad=pre_pad, half=False, device=torch.device('cpu'))
    net, found, _ = load_upscaler(path)
    for name, img in images().items():
        expected, expected_mode = reference.enhance(img.copy(), outscale=outscale, alpha_upsampler=alpha_upsampler)
        ours, mode = upscale(net, found, img.copy(), tile, tile_pad, pre_pad, outscale, alpha_upsampler)
        assert mode == expected_mode and ours.dtype == expected.dtype and ours.shape == expected.shape, name
        assert np.array_equal(ours, expected), f'{name}: max difference {np.abs(ours.astype(int) - expected).max()}'


def test_command_names_outputs_like_realesrgan_and_skips_unreadable_files(tmp_path, capsys):
    src = tmp_path / 'in'
    os.makedirs(src)
    imgs = images()
    cv2.imwrite(str(src / 'a.jpg'), imgs['rgb'])
    cv2.imwrite(str(src / 'b.png'), imgs['rgba'])
    cv2.imwrite(str(src / 'c.png'), imgs['rgb16'])
    (src / 'broken.png').write_bytes(b'not an image')
    status = main(['-i', str(src), '-o', str(tmp_path / 'out'), '--model', checkpoint(tmp_path), '--tile', '8'])
    captured = capsys.readouterr()
    assert status == 1  # one image failed: the others are written, and the exit status says so
    assert sorted(os.listdir(tmp_path / 'out')) == ['a_out.jpg', 'b_out.png', 'c_out.png']
    assert 'broken.png: cannot read' in captured.err and 'done: 3 of 4' in captured.out
    rgba = cv2.imread(str(tmp_path / 'out' / 'b_out.png'), cv2.IMREAD_UNCHANGED)
    assert rgba.shape == (72, 88, 4)
    assert cv2.imread(str(tmp_path / 'out' / 'c_out.png'), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    assert main(['-i', str(tmp_path / 'nope'), '-o', str(tmp_path / 'o'), '--model', checkpoint(tmp_path)]) == 2
    assert '-i: no such file or folder' in capsys.readouterr().err


def test_bad_inputs_are_named_and_the_good_ones_still_processed(tmp_path, capsys):
    from PIL import Image

    from basicsr.archs.discriminator_arch import UNetDiscriminatorSN
    src = tmp_path / 'in'
    os.makedirs(src)
    rgb = images()['rgb']
    cv2.imwrite(str(src / 'good.jpg'), rgb)
    cv2.imwrite(str(src / 'gray.png'), cv2.cvtColor(rgb, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(src / 'tiny.png'), rgb[:1, :1])
    Image.fromarray(rgb[..., ::-1]).convert('CMYK').save(src / 'cmyk.jpg')
    data = (src / 'good.jpg').read_bytes()
    (src / 'cut.jpg').write_bytes(data[:len(data) // 2])  # a download cut short: decodes in part, silently
    (src / 'notes.txt').write_text('not an image, not touched')
    model = checkpoint(tmp_path)
    status = main(['-i', str(src), '-o', str(tmp_path / 'out'), '--model', model])
    captured = capsys.readouterr()
    assert status == 1 and 'cut.jpg: is a truncated JPEG' in captured.err
    assert sorted(os.listdir(tmp_path / 'out')) == ['cmyk_out.jpg', 'good_out.jpg', 'gray_out.png', 'tiny_out.png']
    assert cv2.imread(str(tmp_path / 'out' / 'tiny_out.png')).shape[:2] == (4, 4)
    assert 'done: 4 of 5' in captured.out
    # nothing to do: said plainly, exit 2, nothing written
    os.makedirs(tmp_path / 'empty')
    (tmp_path / 'a_file').write_text('x')
    torch.save({'params': UNetDiscriminatorSN(3, num_feat=8).state_dict()}, tmp_path / 'netD.pth')
    (tmp_path / 'damaged.pth').write_bytes(open(model, 'rb').read()[:200])
    for argv, message in (
            (['-i', str(tmp_path / 'empty'), '-o', str(tmp_path / 'o2'), '--model', model], 'holds no image files'),
            (['-i', str(src), '-o', str(tmp_path / 'a_file'), '--model', model], 'is a file, not a folder'),
            (['-i', str(src), '-o', str(tmp_path / 'o3'), '--model', str(tmp_path / 'netD.pth')], 'not those of a'),
            (['-i', str(src), '-o', str(tmp_path / 'o4'), '--model', str(tmp_path / 'damaged.pth')], 'damaged.pth')):
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err
    assert not any(osp.exists(tmp_path / o) for o in ('o3', 'o4'))
