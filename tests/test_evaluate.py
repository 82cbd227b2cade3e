"""The evaluate command on tiny networks and generated images."""
import cv2
import numpy as np
import pytest
import torch

from basicsr.archs.rrdbnet_arch import RRDBNet

from sdakd_basicsr.data.degradation import make_pairs
from sdakd_basicsr.metrics import perceptual as pm
from sdakd_basicsr.metrics.images import detail_window
from sdakd_basicsr.tools.evaluate import main, tiled

from tests.helpers import write_images, write_options


def tiny(path, feat, grow, seed):
    torch.manual_seed(seed)
    net = RRDBNet(3, 3, num_feat=feat, num_block=1, num_grow_ch=grow)
    torch.save({'params_ema': net.state_dict()}, path)
    return net


@pytest.fixture
def no_weights_anywhere(tmp_path, monkeypatch):
    """Hermetic weight search: only an empty folder (a developer's hub cache must not change the result)."""
    empty = tmp_path / 'no_weights'
    empty.mkdir()
    monkeypatch.setattr(pm, 'search_dirs', lambda: [str(empty), str(empty)])
    return empty


def test_evaluate_writes_the_table_grid_and_states_missing_metrics(tmp_path, no_weights_anywhere):
    write_images(str(tmp_path / 'gt'), 2, 48)
    tiny(tmp_path / 't.pth', 8, 4, 0)
    tiny(tmp_path / 's.pth', 4, 2, 1)
    yml = write_options({'network_g': dict(type='RRDBNet', num_in_ch=3, num_out_ch=3, num_feat=4, num_block=1,
                                           num_grow_ch=2), 'path': {'pretrain_network_g': str(tmp_path / 's.pth')}},
                        str(tmp_path / 's.yml'))
    out = tmp_path / 'eval'
    assert main(['--gt', str(tmp_path / 'gt'), '--teacher', f'{tmp_path}/t.pth:8:4:1', '--student', f'a={yml}',
                 '--student', f'b={tmp_path}/s.pth:4:2:1', '--tile', '6', '--out', str(out), '--device', 'cpu']) == 0
    report = (out / 'results.md').read_text()
    for row in ('| bicubic |', '| teacher |', '| a |', '| b |'):
        assert report.count(row) == 2  # a table for each kind of LR (the default: both)
    assert '## Clean bicubic LR' in report and 'LR: bicubic x4.' in report
    assert '## Real-ESRGAN-degraded LR' in report and 'LR: realesrgan x4, seed 0 + image index.' in report
    for metric, file_name in (('LPIPS', pm.LPIPS_BACKBONE), ('FID', pm.FID_INCEPTION)):
        note = next(line for line in report.splitlines() if line.startswith(f'- {metric} not computed'))
        assert file_name in note and 'https://' in note and str(no_weights_anywhere) in note
    assert '| LPIPS |' not in report and '| FID |' not in report
    rows = list(__import__('csv').DictReader(open(out / 'results.csv')))
    assert {r['lr'] for r in rows} == {'bicubic x4', 'realesrgan x4, seed 0 + image index'}
    for lr in ('bicubic x4', 'realesrgan x4, seed 0 + image index'):
        a, b = [r for r in rows if r['generator'] in 'ab' and r['lr'] == lr]
        assert a['psnr_teacher'] == b['psnr_teacher'] != 'nan'  # the same student twice: same numbers
        assert [r['psnr_teacher'] for r in rows if r['generator'] == 'teacher' and r['lr'] == lr] == ['inf']
        assert float(a['psnr']) > 0 and 0 < float(a['ssim_y']) <= 1
    clean, degraded = ([r for r in rows if r['generator'] == 'bicubic' and r['lr'] == lr][0]['psnr'] for lr in
                       ('bicubic x4', 'realesrgan x4, seed 0 + image index'))
    assert clean != degraded  # two different kinds of LR were measured
    grid = cv2.imread(str(out / 'grid.png'))
    assert grid.shape[0] > 2 * 48  # a row for each kind of LR
    assert main(['--gt', str(tmp_path / 'gt'), '--degradation', 'realesrgan', '--seed', '3',
                 '--out', str(tmp_path / 'one'), '--device', 'cpu']) == 0
    one = (tmp_path / 'one' / 'results.md').read_text()
    assert 'seed 3 + image index' in one and 'Clean bicubic' not in one and one.count('| bicubic |') == 1


def test_tiled_inference_matches_whole_image():
    torch.manual_seed(0)
    net = RRDBNet(3, 3, num_feat=4, num_block=1, num_grow_ch=2).eval()
    x = torch.rand(1, 3, 20, 28)
    with torch.no_grad():
        whole = net(x)
    assert torch.allclose(tiled(net, tile=8, overlap=40)(x), whole, atol=1e-5)
    assert tiled(net, tile=8, overlap=4)(x).shape == whole.shape


def test_seeded_realesrgan_degradation_is_reproducible():
    gt = np.random.default_rng(0).integers(0, 255, (100, 100, 3), dtype=np.uint8)
    (_, lr1, gt1), = make_pairs([('a', gt)], 'realesrgan', 3)
    (_, lr2, gt2), = make_pairs([('a', gt)], 'realesrgan', 3)
    assert np.array_equal(lr1, lr2) and np.array_equal(gt1, gt2)
    assert lr1.shape[0] * 4 == gt1.shape[0] and lr1.shape[1] * 4 == gt1.shape[1]
    (_, lr3, _), = make_pairs([('a', gt)], 'realesrgan', 4)
    assert not np.array_equal(lr1, lr3)
    # images of any shape: the whole image is degraded, none is cropped (small ones included)
    for shape in ((60, 140, 3), (8, 8, 3), (300, 44, 3)):
        img = np.random.default_rng(1).integers(0, 255, shape, dtype=np.uint8)
        (_, lr, out_gt), = make_pairs([('b', img)], 'realesrgan', 0)
        assert out_gt.shape == (shape[0] - shape[0] % 4, shape[1] - shape[1] % 4, 3)
        assert lr.shape == (out_gt.shape[0] // 4, out_gt.shape[1] // 4, 3)


def test_the_picture_is_cropped_where_the_image_has_detail():
    img = np.full((200, 300, 3), 128, np.uint8)
    img[120:180, 200:280] = np.random.default_rng(0).integers(0, 255, (60, 80, 3))  # texture in a flat image
    top, left = detail_window(img, 64, multiple=4)
    assert top % 4 == 0 and left % 4 == 0
    assert 120 - 64 < top <= 180 and 200 - 64 < left <= 280  # the window overlaps the texture
    assert detail_window(img[:32, :32], 64) == (0, 0)  # smaller than the window: the whole image


def test_bad_student_spec_gt_folder_and_output_are_one_line_each(tmp_path, capsys):
    write_images(str(tmp_path / 'gt'), 1, 16)
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'a_file').write_text('x')
    gt, out = str(tmp_path / 'gt'), str(tmp_path / 'o')
    for argv, message in ((['--gt', gt, '--student', 'x=nothing.pth', '--out', out],
                           '--student x: no such file or folder: nothing.pth'),
                          (['--gt', gt, '--student', 'x=a:b', '--out', out],
                           "--student x 'a:b': expected a checkpoint, a release folder"),
                          (['--gt', str(tmp_path / 'empty'), '--out', out], '--gt: no images'),
                          (['--gt', gt, '--out', str(tmp_path / 'a_file')], 'is a file, not a folder')):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith('error: ') and message in err and 'Traceback' not in err, err


def test_any_student_checkpoint_or_release_folder_is_read_from_its_weights(tmp_path, capsys):
    """A compact student checkpoint and a release-style folder, with no shape flags: the same numbers as its
    option file."""
    from basicsr.archs.srvgg_arch import SRVGGNetCompact
    write_images(str(tmp_path / 'gt'), 1, 48)
    torch.manual_seed(0)
    net = SRVGGNetCompact(num_feat=8, num_conv=2, upscale=4, act_type='prelu')
    torch.save({'params_ema': net.state_dict()}, tmp_path / 'c.pth')
    (tmp_path / 'release').mkdir()
    torch.save({'params_ema': net.state_dict()}, tmp_path / 'release' / 'student.pth')
    tiny(tmp_path / 't.pth', 8, 4, 0)
    yml = write_options({'network_g': dict(type='SRVGGNetCompact', num_feat=8, num_conv=2, upscale=4,
                                           act_type='prelu'), 'path': {'pretrain_network_g': str(tmp_path / 'c.pth')}},
                        str(tmp_path / 'c.yml'))
    out = tmp_path / 'eval'
    assert main(['--gt', str(tmp_path / 'gt'), '--teacher', str(tmp_path / 't.pth'), '--student',
                 f'ckpt={tmp_path}/c.pth', '--student', f'folder={tmp_path}/release', '--student', f'yml={yml}',
                 '--degradation', 'bicubic', '--out', str(out), '--device', 'cpu']) == 0
    rows = {r['generator']: r for r in __import__('csv').DictReader(open(out / 'results.csv'))}
    assert rows['ckpt']['psnr_teacher'] == rows['folder']['psnr_teacher'] == rows['yml']['psnr_teacher'] != 'nan'
    # a discriminator is no generator: one line naming it, exit 2
    from basicsr.archs.discriminator_arch import UNetDiscriminatorSN
    torch.save({'params': UNetDiscriminatorSN(3, num_feat=8).state_dict()}, tmp_path / 'd.pth')
    assert main(['--gt', str(tmp_path / 'gt'), '--student', f'd={tmp_path}/d.pth', '--out', str(out)]) == 2
    assert '--student d' in (err := capsys.readouterr().err) and 'the weights are not those of a' in err


def random_alexnet_file(path):
    """A file in torchvision's AlexNet format (random weights: the real ones cannot be downloaded here)."""
    import torchvision
    torch.manual_seed(0)
    state = torchvision.models.alexnet(weights=None).state_dict()
    torch.save(state, path)
    return state


def random_fid_inception_file(path):
    """A file with the keys and shapes of pt_inception-2015-12-05 (1008 classes, no aux head), random weights."""
    import torchvision
    torch.manual_seed(0)
    state = torchvision.models.inception_v3(weights=None, num_classes=1008, aux_logits=False,
                                            init_weights=False).state_dict()
    torch.save(state, path)
    return state


def test_lpips_loads_the_local_backbone_and_orders_distortions(tmp_path, no_weights_anywhere):
    state = random_alexnet_file(tmp_path / pm.LPIPS_BACKBONE)
    metric = pm.LPIPSMetric(str(tmp_path / pm.LPIPS_BACKBONE))
    # the file, not random init
    assert torch.equal(getattr(metric.net.net.slice5, '10').weight, state['features.10.weight'])
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    noisy = [np.clip(img + rng.normal(0, s, img.shape), 0, 255).astype(np.uint8) for s in (8, 40)]
    assert metric(img, img) == 0
    assert 0 < metric(noisy[0], img) < metric(noisy[1], img)
    # found without the flag in the searched folder
    import shutil
    shutil.copy(tmp_path / pm.LPIPS_BACKBONE, no_weights_anywhere / pm.LPIPS_BACKBONE)
    assert pm.LPIPSMetric().backbone_path == str(no_weights_anywhere / pm.LPIPS_BACKBONE)


def test_lpips_and_fid_bad_inputs_name_the_file(tmp_path, no_weights_anywhere, monkeypatch, capsys):
    with pytest.raises(FileNotFoundError, match=f'--lpips-weights .*nope.pth: file not found.*{pm.LPIPS_BACKBONE}'):
        pm.LPIPSMetric(str(tmp_path / 'nope.pth'))
    with pytest.raises(FileNotFoundError, match=f'FID needs {pm.FID_INCEPTION}: put it in {no_weights_anywhere}'):
        pm.FIDMetric()
    torch.save({'conv.weight': torch.zeros(1)}, tmp_path / 'other.pth')
    with pytest.raises(KeyError, match='not a torchvision AlexNet checkpoint'):
        pm.LPIPSMetric(str(tmp_path / 'other.pth'))
    monkeypatch.setitem(__import__('sys').modules, 'lpips', None)  # package not installed
    with pytest.raises(ImportError, match='pip install lpips'):
        pm.LPIPSMetric(str(tmp_path / 'other.pth'))
    write_images(str(tmp_path / 'gt'), 1, 16)
    # an explicit flag stops the run at once, naming it
    assert main(['--gt', str(tmp_path / 'gt'), '--fid-inception', str(tmp_path / 'nope.pth'),
                 '--out', str(tmp_path / 'o')]) == 2
    assert '--fid-inception' in capsys.readouterr().err


def test_evaluate_reports_lpips_and_fid_with_local_weights(tmp_path, no_weights_anywhere):
    random_alexnet_file(tmp_path / 'alex.pth')
    inception_state = random_fid_inception_file(no_weights_anywhere / pm.FID_INCEPTION)  # found by the search
    fid = pm.FIDMetric()
    assert torch.equal(fid.net.blocks[3][1].branch1x1.conv.weight, inception_state['Mixed_7b.branch1x1.conv.weight'])
    write_images(str(tmp_path / 'gt'), 3, 48)
    tiny(tmp_path / 't.pth', 8, 4, 0)
    out = tmp_path / 'eval'
    assert main(['--gt', str(tmp_path / 'gt'), '--teacher', f'{tmp_path}/t.pth:8:4:1', '--lpips-weights',
                 str(tmp_path / 'alex.pth'), '--out', str(out), '--device', 'cpu']) == 0
    report = (out / 'results.md').read_text()
    assert '| LPIPS | LPIPS vs teacher | FID |' in report
    assert 'FID protocol: 3 whole images per set' in report and 'reference set: the 3 GT images' in report
    rows = {r['generator']: r for r in __import__('csv').DictReader(open(out / 'results.csv'))}
    assert float(rows['teacher']['lpips_teacher']) == 0 and float(rows['bicubic']['lpips_teacher']) > 0
    assert float(rows['bicubic']['lpips']) > 0 and float(rows['bicubic']['fid']) > 0
    gts = [pm.np.ascontiguousarray(__import__('cv2').imread(str(p))[..., ::-1])
           for p in sorted((tmp_path / 'gt').iterdir())]
    assert abs(fid(gts, gts)) < 1e-3  # identical sets


def test_bad_gt_images_are_named_and_the_good_ones_still_measured(tmp_path, capsys, no_weights_anywhere):
    from PIL import Image
    gt = tmp_path / 'gt'
    write_images(str(gt), 1, 40)
    rgb = np.random.default_rng(0).integers(0, 255, (36, 52, 3), dtype=np.uint8)  # odd size, not a multiple of 4
    cv2.imwrite(str(gt / 'odd.png'), rgb)
    cv2.imwrite(str(gt / 'deep.png'), (rgb.astype(np.uint16) * 257))  # 16-bit
    cv2.imwrite(str(gt / 'rgba.png'), np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)]))
    cv2.imwrite(str(gt / 'gray.png'), rgb[..., 0])
    Image.fromarray(rgb).convert('CMYK').save(gt / 'cmyk.jpg')
    cv2.imwrite(str(gt / 'tiny.png'), rgb[:8, :8])
    cv2.imwrite(str(gt / 'cut.jpg'), rgb)
    data = (gt / 'cut.jpg').read_bytes()
    (gt / 'cut.jpg').write_bytes(data[:len(data) // 2])
    (gt / 'broken.png').write_bytes(b'not an image')
    (gt / 'notes.txt').write_text('not an image: not listed')
    out = tmp_path / 'eval'
    assert main(['--gt', str(gt), '--out', str(out), '--device', 'cpu']) == 1  # some were skipped
    err = capsys.readouterr().err
    for name, why in (('tiny.png', 'smaller than 16 px'), ('cut.jpg', 'truncated JPEG'), ('broken.png', 'cannot')):
        assert f'{name}: ' in err and why in err, name
    report = (out / 'results.md').read_text()
    assert 'skipped' in report and 'tiny.png' in report and 'notes.txt' not in report
    assert '6 images from' in report  # img + odd, 16-bit, RGBA, gray and CMYK: measured
    rows = list(__import__('csv').DictReader(open(out / 'results.csv')))
    assert all(float(r['psnr']) > 0 for r in rows)
    only_bad = tmp_path / 'bad'
    only_bad.mkdir()
    (only_bad / 'x.png').write_bytes(b'no')
    assert main(['--gt', str(only_bad), '--out', str(tmp_path / 'e2'), '--device', 'cpu']) == 2
    assert 'no usable image' in capsys.readouterr().err
