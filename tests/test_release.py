"""The release folder: a params_ema-only .pth that loads into a plain RRDBNet, ONNX with parity, ncnn files
(fp16 and fp32) that read back into the same network, a model card with the facts, and the upscale command
reading the folder."""
import json
import os

import pytest
import torch
import yaml

from sdakd_basicsr.deploy.ncnn import convert
from sdakd_basicsr.tools.release import main

from tests.helpers import STUDENT_G, TEACHER_G, build


@pytest.fixture
def trained(tmp_path, monkeypatch):
    """A finished stage-3 experiment and the stage-2 one it came from (BasicSR copies each option file)."""
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    student = build(STUDENT_G)
    for stage in (2, 3):
        name = f'run_stage{stage}'
        os.makedirs(f'experiments/{name}/models')
        opt = {'name': name, 'scale': 4, 'network_g': dict(STUDENT_G), 'train': {'total_iter': 100 * stage},
               'sdakd': {'stage': stage, 'teacher_g': {'network': dict(TEACHER_G), 'path': 'teacher.pth'}},
               'path': {'pretrain_network_g': 'experiments/run_stage2/models/net_g_latest.pth' if stage == 3 else None}}
        with open(f'experiments/{name}/{name}.yml', 'w') as f:
            yaml.safe_dump(opt, f)
        torch.save({'params': build(STUDENT_G).state_dict(), 'params_ema': student.state_dict()},
                   f'experiments/{name}/models/net_g_latest.pth')
    # the options a run really used (after --force_yml) are in its log, not in the copied option file
    with open('experiments/run_stage3/train_run_stage3_20261203.log', 'w') as f:
        f.write('2026-12-03 INFO:\n  train:[\n    total_iter: 777\n    warmup_iter: -1\n')
    return student, 'experiments/run_stage3/run_stage3.yml'


def test_release_writes_every_format_and_a_model_card(trained):
    student, option_file = trained
    assert main(['-opt', option_file, '--out', 'releases/tiny_x4']) == 0
    files = sorted(os.listdir('releases/tiny_x4'))
    assert files == sorted(['tiny_x4.pth', 'tiny_x4.onnx', 'tiny_x4.param', 'tiny_x4.bin', 'tiny_x4-fp32.param',
                            'tiny_x4-fp32.bin', 'release.json', 'model_card.md'])
    ckpt = torch.load('releases/tiny_x4/tiny_x4.pth')
    assert list(ckpt) == ['params_ema']  # the official Real-ESRGAN layout: no non-EMA weights to pick by mistake
    plain = build(STUDENT_G)
    plain.load_state_dict(ckpt['params_ema'], strict=True)
    assert all(torch.equal(plain.state_dict()[k], v) for k, v in student.state_dict().items())
    fp32_state, config = convert('releases/tiny_x4/tiny_x4-fp32.param', 'releases/tiny_x4/tiny_x4-fp32.bin')
    assert config['num_feat'] == STUDENT_G['num_feat']
    assert all(torch.equal(fp32_state[k], v) for k, v in student.state_dict().items())
    card = open('releases/tiny_x4/model_card.md').read()
    params = sum(p.numel() for p in student.parameters())
    for fact in (f'{params:,d}', 'num_feat 4', 'x4', 'teacher.pth', 'run_stage2 | 2 | 200', 'run_stage3 | 3 | 777',
                 'ms', 'dB'):
        assert fact in card, fact
    meta = json.load(open('releases/tiny_x4/release.json'))
    assert meta['params'] == params and meta['files']['pytorch'] == 'tiny_x4.pth'


def test_upscale_reads_a_release_folder(trained, capsys):
    import cv2
    import numpy as np

    from sdakd_basicsr.tools.upscale import main as upscale
    _, option_file = trained
    main(['-opt', option_file, '--out', 'releases/tiny_x4'])
    os.makedirs('in')
    cv2.imwrite('in/a.png', np.full((12, 10, 3), 128, np.uint8))
    assert upscale(['-i', 'in', '-o', 'out', '--model', 'releases/tiny_x4']) == 0
    assert cv2.imread('out/a_out.png').shape == (48, 40, 3)


def test_release_of_a_missing_checkpoint_names_it(trained, capsys):
    _, option_file = trained
    assert main(['-opt', option_file, '--checkpoint', 'nope.pth', '--out', 'r']) == 2
    assert 'nope.pth' in capsys.readouterr().err and not os.path.exists('r')


def test_release_checks_what_it_reads_and_writes_before_writing_anything(trained, capsys):
    from basicsr.archs.discriminator_arch import UNetDiscriminatorSN
    _, option_file = trained
    open('a_file', 'w').write('x')
    torch.save({'params': UNetDiscriminatorSN(3, num_feat=8).state_dict()}, 'netD.pth')
    with open('experiments/run_stage3/models/net_g_latest.pth', 'rb') as f:
        open('damaged.pth', 'wb').write(f.read()[:300])
    for argv, message in ((['--out', 'a_file'], 'is a file, not a folder'),
                          (['--out', 'r1', '--evaluation', 'missing.md'], '--evaluation: no such file: missing.md'),
                          (['--out', 'r2', '--picture', 'missing.png'], '--picture: no such file: missing.png'),
                          (['--out', 'r3', '--checkpoint', 'netD.pth'], 'netD.pth'),
                          (['--out', 'r4', '--checkpoint', 'damaged.pth'], 'damaged.pth')):
        assert main(['-opt', option_file, *argv]) == 2, argv
        assert message in capsys.readouterr().err, argv
    assert not any(os.path.exists(f'r{i}') for i in range(1, 5))
    # a folder holding other files: they are left alone
    os.makedirs('shared')
    open('shared/notes.txt', 'w').write('mine')
    assert main(['-opt', option_file, '--out', 'shared']) == 0
    assert open('shared/notes.txt').read() == 'mine' and os.path.isfile('shared/shared.pth')


def test_release_from_a_checkpoint_alone_reads_the_architecture_from_the_weights(trained):
    student, _ = trained
    assert main(['--checkpoint', 'experiments/run_stage3/models/net_g_latest.pth', '--out', 'from_ckpt']) == 0
    card = open('from_ckpt/model_card.md').read()
    assert 'RRDBNet' in card and f'num_feat {STUDENT_G["num_feat"]}' in card
    saved = torch.load('from_ckpt/from_ckpt.pth')['params_ema']
    assert all(torch.equal(saved[k], v) for k, v in student.state_dict().items())
    assert main(['--checkpoint', 'from_ckpt', '--out', 'again']) == 0  # a release folder as the student
    again = torch.load('again/again.pth')['params_ema']
    assert all(torch.equal(again[k], v) for k, v in saved.items())


@pytest.mark.parametrize('spec', [
    dict(type='SRVGGNetCompact', num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=4, act_type='prelu'),
    dict(type='RRDBNet', num_in_ch=3, num_out_ch=3, num_feat=8, num_block=2, num_grow_ch=32),
    dict(type='RRDBNet', num_in_ch=3, num_out_ch=3, num_feat=8, num_block=2, num_grow_ch=4),
])
def test_released_students_load_in_spandrel_with_the_same_output_or_the_card_says_why_not(tmp_path, monkeypatch,
                                                                                          spec):
    """spandrel is the loader of ComfyUI and chaiNNer: a released .pth loads there and gives the student's output,
    or the model card names the reason it does not."""
    from sdakd_basicsr.archs.generator_call import build_generator
    spandrel = pytest.importorskip('spandrel')
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    net = build_generator(spec).eval()
    torch.save({'params_ema': net.state_dict()}, 'student.pth')
    assert main(['--checkpoint', 'student.pth', '--out', 'rel']) == 0
    card = open('rel/model_card.md').read()
    row = next(line for line in card.splitlines() if line.startswith('| spandrel'))
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        expected = net(x)
    try:
        loaded = spandrel.ModelLoader().load_from_file('rel/rel.pth')
        with torch.no_grad():
            got = loaded.model.eval()(x)
        ok = got.shape == expected.shape and torch.allclose(got, expected, atol=1e-5)
    except Exception:  # noqa: BLE001  (spandrel refuses the weights, in its own words)
        ok = False
    assert ok == ('| yes |' in row), (row, ok)
    assert ok == (spec.get('num_grow_ch', 32) == 32)  # compact students and RRDBNets of the standard growth load
