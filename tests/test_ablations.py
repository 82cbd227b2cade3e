"""Baselines and ablations: the transforms, the files the script generates, and two methods run through the pipeline."""
import glob
import os
from os import path as osp

import pytest
import yaml

from sdakd_basicsr.distill.options import parse_sdakd_options
from sdakd_basicsr.recipes.ablations import METHODS, apply_method, stage_iterations

from tests.helpers import REPO, shrink


def shipped():
    return {s: yaml.safe_load(open(osp.join(REPO, f'options/sdakd_realesrgan_stage{s}.yml'))) for s in (1, 2, 3)}


def policy(opt):
    return parse_sdakd_options(dict(opt, is_train=True)).policy


def test_each_method_changes_what_it_claims():
    m = {name: apply_method(name, shipped()) for name in METHODS}
    assert set(m['sdakd']) == {1, 2, 3}
    assert set(m['scratch']) == {1, 2} and all('teacher_g' not in o['sdakd'] for o in m['scratch'].values())
    assert policy(m['scratch'][2]).adversarial == ('student', ) and not policy(m['scratch'][2]).fmd
    assert [policy(o).adversarial for o in m['teacher_d_only'].values()] == [('teacher', ), ('teacher', )]
    assert all('network_d' not in o for o in m['teacher_d_only'].values())
    assert all(not policy(o).fmd and 'network_adapters' not in o for o in m['no_fmd'].values())
    assert set(m['no_stage1']) == {2, 3} and m['no_stage1'][2]['path']['pretrain_network_g'] is None
    assert all(o['network_adapters']['kind'] == 'conv1x1' for o in m['conv1x1'].values())
    assert set(m['student_d_only']) == {3} and policy(m['student_d_only'][3]).adversarial == ('student', )


def test_shared_stages_and_rewired_hand_off():
    m = apply_method('student_d_only', shipped())
    # stage 3 alone is new: it starts from SDAKD's own stage 2 run
    assert m[3]['path']['pretrain_network_g'] == 'experiments/sdakd_realesrgan_x4_w0.5_stage2/models/net_g_latest.pth'
    t = apply_method('teacher_d_only', shipped())
    assert t[3]['path']['pretrain_network_g'].startswith('experiments/sdakd_realesrgan_x4_w0.5_stage2_teacher_d_only/')
    assert t[3]['path']['pretrain_network_d_teacher'].endswith('stage2_teacher_d_only/models/net_d_teacher_latest.pth')
    assert t[2]['path']['pretrain_network_d_teacher'].endswith('RealESRGAN_x4plus_netD.pth')
    with pytest.raises(KeyError, match='unknown method'):
        apply_method('nope', shipped())


def test_equal_budgets():
    budget = {1: 300, 2: 100, 3: 80}
    assert stage_iterations([1, 2, 3], budget) == budget
    assert stage_iterations([2, 3], budget) == {2: 400, 3: 80}
    assert stage_iterations([1, 2], budget) == {1: 300, 2: 180}


def test_generated_files_are_up_to_date_and_valid(tmp_path):
    import subprocess
    import sys
    subprocess.run([sys.executable, osp.join(REPO, 'scripts/make_ablation_options.py'), '--out-dir', str(tmp_path)],
                   check=True, capture_output=True)
    files = sorted(glob.glob(osp.join(tmp_path, '*.yml')))
    expected = {f'{name}_stage{s}.yml' for name in METHODS if name != 'sdakd' for s in apply_method(name, shipped())}
    assert {osp.basename(f) for f in files} == expected
    for f in files:
        opt = yaml.safe_load(open(f))
        method, stage = osp.basename(f)[:-4].rsplit('_stage', 1)
        assert opt == apply_method(method, shipped())[int(stage)], f'{f} differs from its transform'
        policy(opt)


@pytest.mark.parametrize('method', ['teacher_d_only', 'scratch'])
def test_methods_run_through_the_pipeline(method, run_train):
    stages = {s: shrink(opt) for s, opt in shipped().items()}
    if method == 'teacher_d_only':
        run_train(stages[1])  # shared with SDAKD
    for stage, opt in sorted(apply_method(method, stages).items()):
        exp = run_train(opt)
        assert osp.isfile(osp.join(exp, 'models', 'net_g_latest.pth'))
    models = os.listdir(exp + '/models')
    assert ('net_d_teacher_latest.pth' in models) == (method == 'teacher_d_only')
    assert ('net_d_latest.pth' in models) == (method == 'scratch')
