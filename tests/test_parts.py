"""The model's named parts on their own: the option schema (and its generated docs), the generator families,
and the one checkpoint loader / verified save."""
import dataclasses
import os
from os import path as osp

import pytest
import torch

from sdakd_basicsr import checkpoints
from sdakd_basicsr.archs.generator_call import FAMILIES, PLAIN, family_of, rrdbnet_default_taps
from sdakd_basicsr.distill.schema import DOCUMENTED_BLOCKS, SDAKDBlock, TrainBlock, parse_block
from sdakd_basicsr.distill.schema_doc import options_markdown
from sdakd_basicsr.tools import options_doc

from tests.helpers import REPO, STUDENT_G, TEACHER_G, build


# ------------------------------------------------------------------ schema
def test_docs_option_reference_is_generated_from_the_schema():
    path = osp.join(REPO, 'docs', 'options.md')
    assert options_doc.is_fresh(path), 'docs/options.md is stale: python -m sdakd_basicsr.tools.options_doc --write'
    text = options_markdown()
    for _, cls in DOCUMENTED_BLOCKS:
        for f in dataclasses.fields(cls):
            assert f'| `{f.name}` |' in text


def test_options_doc_check_fails_on_a_stale_file(tmp_path, capsys):
    stale = tmp_path / 'options.md'
    stale.write_text(options_markdown().replace('net_d_reg_every', 'net_d_reg_evry') + '\n')
    assert options_doc.main(['--check', '--path', str(stale)]) == 1
    assert 'stale' in capsys.readouterr().err
    assert options_doc.main(['--write', '--path', str(stale)]) == 0
    assert options_doc.main(['--check', '--path', str(stale)]) == 0


def test_absent_keys_take_the_schema_defaults_and_list_defaults_are_not_shared():
    a, b = parse_block(TrainBlock, {}, 'train'), parse_block(TrainBlock, None, 'train')
    for f in dataclasses.fields(TrainBlock):
        assert getattr(a, f.name) == f.default and getattr(b, f.name) == f.default
    blocks = [parse_block(SDAKDBlock, {'stage': 1}, 'sdakd') for _ in range(2)]
    blocks[0].value_range.append(5)
    assert blocks[1].value_range == [0, 1]


@pytest.mark.parametrize('values, match', [
    ({'stage': 2, 'tapz': ['body.0']}, r"sdakd.tapz: unknown key"),
    ({}, 'sdakd.stage is required'),
    ({'stage': 2, 'amp': 'fp8'}, 'sdakd.amp must be ~, bf16 or fp16'),
    ({'stage': 2, 'channels_last': 'false'}, 'sdakd.channels_last must be true or false'),
    ({'stage': '2'}, 'sdakd.stage must be a whole number'),
    ({'stage': 2, 'taps': [1]}, r'sdakd.taps\[0\] must be a string'),
    ({'stage': 2, 'taps': 'body.5'}, r"sdakd.taps must be a list, e.g. `taps: \[body.5\]` for one item, got 'body.5'"),
    ({'stage': 2, 'adversarial': 'student'}, r'sdakd.adversarial must be a list'),
    ({'stage': 2, 'teacher_g': {'path': 'x.pth'}}, 'sdakd.teacher_g.network is required'),
])
def test_bad_sdakd_values_name_the_key(values, match):
    with pytest.raises((KeyError, ValueError), match=match):
        parse_block(SDAKDBlock, values, 'sdakd')


def test_bad_train_values_name_the_key_and_explain_yaml_floats():
    with pytest.raises(ValueError, match=r'train.ema_decay must be a number.*1.0e-4'):
        parse_block(TrainBlock, {'ema_decay': '1e-4'}, 'train')
    with pytest.raises(ValueError, match='train.net_d_reg_every must be >= 1, got 0'):
        parse_block(TrainBlock, {'net_d_reg_every': 0}, 'train')
    assert parse_block(TrainBlock, {'r1_reg_weight': 10}, 'train').r1_reg_weight == 10.0


# ------------------------------------------------------------------ generator families
def test_families_decide_calls_noise_and_taps():
    rrdb = build(TEACHER_G)
    assert family_of(rrdb) is FAMILIES['RRDBNet'] is family_of(TEACHER_G)
    assert family_of({'type': 'EDSR'}) is PLAIN and family_of({'type': 'SRVGGNetCompact'}).scale_key == 'upscale'
    assert family_of(rrdb).make_noise(rrdb, 2, 'cpu') is None
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(family_of(rrdb).call(rrdb, x), rrdb(x))
    assert family_of(rrdb).taps_for(TEACHER_G) == ['body.1', 'conv_body']  # 2 blocks: the last one
    assert rrdbnet_default_taps({'num_block': 23}) == ['body.5', 'body.11', 'body.17', 'body.22', 'conv_body']
    with pytest.raises(ValueError, match='no default taps'):
        PLAIN.taps_for({'type': 'EDSR'})
    gcfsr = FAMILIES['GCFSR']
    with pytest.raises(ValueError, match='single-input'):
        gcfsr.check_exportable()
    with pytest.raises(ValueError, match='sdakd.channels_last'):
        gcfsr.check_channels_last()
    with pytest.raises(KeyError, match='in_size'):
        gcfsr.call(rrdb, x)


# ------------------------------------------------------------------ checkpoints
def test_save_and_load_round_trip_bit_exactly(tmp_path):
    net, ema = build(STUDENT_G), build(STUDENT_G)
    path = str(tmp_path / 'models' / 'net_g_5.pth')
    checkpoints.save_networks(path, {'params': net, 'params_ema': ema})
    assert not osp.exists(path + checkpoints.PARTIAL)
    loaded = checkpoints.load_generator(STUDENT_G, path, 'params_ema')
    for (k, v), w in zip(ema.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(v, w), k


def test_one_param_key_policy(tmp_path):
    net = build(STUDENT_G)
    raw, only_params = str(tmp_path / 'raw.pth'), str(tmp_path / 'params.pth')
    torch.save(net.state_dict(), raw)
    torch.save({'params': {f'module.{k}': v for k, v in net.state_dict().items()}}, only_params)
    state = checkpoints.select_params(torch.load(raw), None, raw)
    assert state.keys() == net.state_dict().keys()
    # no silent fallback: a missing entry is an error that lists the entries present and the explicit fix
    with pytest.raises(checkpoints.CheckpointError, match=r"params.pth has no 'params_ema' entry; its entries: "
                       r"\['params'\].*\[params_ema, params\]"):
        checkpoints.select_params(torch.load(only_params), 'params_ema', only_params)
    fallback = checkpoints.select_params(torch.load(only_params), ['params_ema', 'params'], only_params)
    assert fallback.keys() == net.state_dict().keys()  # the written-out fallback, and the DDP prefix is gone
    with pytest.raises(checkpoints.CheckpointError, match=r"raw.pth has no 'params_ema' entry"):
        checkpoints.select_params(torch.load(raw), 'params_ema', raw)
    with pytest.raises(FileNotFoundError, match='path.pretrain_network_g: checkpoint not found: .*nope.pth'):
        checkpoints.load_into(net, str(tmp_path / 'nope.pth'), 'params', True, 'path.pretrain_network_g')


@pytest.mark.parametrize('damage, diagnosis', [
    ('empty', 'is empty'), ('truncated', 'truncated PyTorch checkpoint'), ('text', 'a text file, not a checkpoint'),
    ('garbage', 'not a PyTorch checkpoint'), ('legacy', 'legacy'), ('tensor', 'holds a Tensor, not a checkpoint'),
    ('state', 'not a state dict of tensors')])
def test_unreadable_checkpoints_say_which_file_and_what_is_wrong(tmp_path, damage, diagnosis):
    """Every way a file can fail to be a checkpoint: one error class, naming the option, the file and the
    problem, never a bare EOFError / UnpicklingError / zip error."""
    good = str(tmp_path / 'good.pth')
    checkpoints.save_networks(good, {'params': build(STUDENT_G)})
    blob = open(good, 'rb').read()
    bad = str(tmp_path / 'net_g_latest.pth')
    if damage == 'legacy':
        torch.save({'params': build(STUDENT_G).state_dict()}, bad, _use_new_zipfile_serialization=False)
        blob = open(bad, 'rb').read()
    content = {'empty': b'', 'truncated': blob[:len(blob) // 2], 'text': b'<html><body>404 Not Found</body></html>',
               'garbage': bytes(range(7, 250)) * 40, 'legacy': blob[:len(blob) // 3]}.get(damage)
    if content is not None:
        open(bad, 'wb').write(content)
    elif damage == 'tensor':
        torch.save(torch.zeros(3), bad)
    else:  # a training state given where weights are expected
        checkpoints.save_training_state(bad, 1, 10, [], [])
    with pytest.raises(checkpoints.CheckpointError, match=f'path.pretrain_network_g: .*net_g_latest.pth.*{diagnosis}'):
        checkpoints.load_into(build(STUDENT_G), bad, 'params' if damage != 'state' else None, True,
                              'path.pretrain_network_g')


def test_strict_load_names_the_mismatch_and_non_strict_skips_it(tmp_path):
    path = str(tmp_path / 'teacher.pth')
    checkpoints.save_networks(path, {'params': build(TEACHER_G)})
    student = build(STUDENT_G)
    with pytest.raises(ValueError, match=r'shape mismatch.*conv_first.weight: checkpoint \(8, 3, 3, 3\) vs network '
                                         r'\(4, 3, 3, 3\).*num_feat'):
        checkpoints.load_into(student, path, 'params', True, 'path.pretrain_network_g')
    before = {k: v.clone() for k, v in student.state_dict().items()}
    teacher_state = torch.load(path)['params']
    checkpoints.load_into(student, path, 'params', False)
    for k, v in student.state_dict().items():  # mis-shaped entries skipped, the others loaded
        assert torch.equal(v, before[k] if v.shape != teacher_state[k].shape else teacher_state[k]), k
    assert torch.equal(student.conv_last.bias, teacher_state['conv_last.bias'])


def test_a_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = str(tmp_path / 'net_g_latest.pth')
    good = build(STUDENT_G)
    checkpoints.save_networks(path, {'params': good})
    original = open(path, 'rb').read()
    real_save = torch.save

    def half_written(obj, f, *args, **kwargs):  # a full disk: the write stops half-way without an error
        real_save(obj, f, *args, **kwargs)
        size = os.path.getsize(f)
        with open(f, 'r+b') as fh:
            fh.truncate(size // 2)

    monkeypatch.setattr(checkpoints.torch, 'save', half_written)
    monkeypatch.setattr(checkpoints.time, 'sleep', lambda s: None)
    with pytest.raises(OSError, match='could not write .*net_g_latest.pth.*unchanged'):
        checkpoints.save_networks(path, {'params': build(STUDENT_G)})
    assert open(path, 'rb').read() == original
    assert not osp.exists(path + checkpoints.PARTIAL)


def test_generated_option_blocks_are_in_step_with_their_source():
    """The degradation blocks and the GCFSR 512 family are stamped from one source: a recipe change is one edit."""
    import subprocess
    import sys
    from os import path as osp
    repo = osp.dirname(osp.dirname(osp.abspath(__file__)))
    run = subprocess.run([sys.executable, osp.join(repo, 'scripts', 'make_option_files.py'), '--check'], cwd=repo,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
