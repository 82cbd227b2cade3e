"""The study: its plan (shared runs, equal budgets, wiring), its verdict rules, and the command end to end on
tiny networks (two seeds), including resume."""
import csv
import os
from os import path as osp

import cv2
import numpy as np
import pytest
import yaml

from sdakd_basicsr.recipes import demo
from sdakd_basicsr.recipes import study as st

from tests.helpers import REPO, STUDENT_G, TAPS, TEACHER_G, build, write_images


def demo_stages():
    return demo.load_stages(osp.join(REPO, 'options', 'study'))


def test_plan_shares_stage2_variants_and_gives_every_arm_the_same_budget():
    runs = st.plan(demo_stages(), list(st.ARMS), [0, 1, 2], {0: 30, 1: 300, 2: 200, 3: 150})
    by_name = {r.name: r for r in runs}
    assert [r.name for r in runs[:2]] == ['study_stage0', 'study_stage1']
    assert sum(r.stage == 2 for r in runs) == 3 * len(st.STAGE2_VARIANTS)  # shared between arms, per seed
    assert sum(r.stage == 3 for r in runs) == 3 * len(st.ARMS)
    names = [r.name for r in runs]
    for r in runs:  # dependency order
        assert all(names.index(dep) < names.index(r.name) for dep in r.after)
    for arm_name, arm in st.ARMS.items():
        s3 = by_name[st.final_run(arm_name, 1)]
        s2 = by_name[f'study_s1_stage2_{arm.stage2}']
        assert s2.iters == 200 and s3.iters == 150
        assert s3.opt['sdakd']['adversarial'] == list(arm.stage3_adversaries)
        assert ('network_d_teacher' in s3.opt) == ('teacher' in arm.stage3_adversaries)
        assert ('network_d' in s3.opt) == ('student' in arm.stage3_adversaries)
        assert ('fmd_opt' in s3.opt['train']) == arm.fmd
        assert s3.opt['path']['pretrain_network_g'] == f'experiments/{s2.name}/models/net_g_latest.pth'
        for opt in (s2.opt, s3.opt):
            assert opt['datasets']['train']['type'] == 'TeacherCachedPairedDataset'
            for key in ('gan_opt', 'gan_teacher_opt'):
                if key in opt['train']:
                    assert opt['train'][key]['loss_weight'] == st.ADV_WEIGHT
    # D_T continues from stage 2 where stage 2 trained it, else from the warm-up; D_S likewise or fresh
    assert by_name['study_s0_stage3_teacher_d_only'].opt['path']['pretrain_network_d_teacher'] == \
        'experiments/study_s0_stage2_dt/models/net_d_teacher_latest.pth'
    assert by_name['study_s0_stage3_sdakd'].opt['path']['pretrain_network_d_teacher'] == \
        'experiments/study_stage0/models/net_d_teacher_latest.pth'
    assert by_name['study_s0_stage3_stage2_no_adv'].opt['path']['pretrain_network_d'] is None
    assert by_name['study_s0_stage3_sdakd'].opt['path']['pretrain_network_d'] == \
        'experiments/study_s0_stage2_ds/models/net_d_latest.pth'
    assert by_name['study_s0_stage2_ds'].opt['manual_seed'] != by_name['study_s1_stage2_ds'].opt['manual_seed']
    with pytest.raises(KeyError, match='unknown study arm'):
        st.plan(demo_stages(), ['sdakd', 'nope'], [0], {0: 1, 1: 1, 2: 1, 3: 1})


def test_verdict_rules():
    assert st.compare([10.0, 10.2, 10.1], [9.0, 9.1, 9.2], higher_is_better=True) == 'better'
    assert st.compare([10.0, 10.2, 10.1], [9.0, 9.1, 9.2], higher_is_better=False) == 'worse'
    assert st.compare([10.0, 11.0], [10.4, 10.6], higher_is_better=True) == 'not separated'  # within the spread
    assert st.compare([float('nan')], [1.0], higher_is_better=True) == 'n/a'
    series = [(i, float(i)) for i in range(1, 9)]
    assert st.tail_mean(series) == 7.5 and st.head_mean(series) == 1.5
    logs = {'out_dt_real': [(5, 1.0), (10, 2.0)], 'out_dt_fake': [(5, -1.0), (10, -3.0)]}
    assert st.margin_series(logs, 'dt') == [(5, 2.0), (10, 5.0)]


def _tiny_demo_root(root):
    """The study's layout with tiny networks and data: options/study, a teacher file, datasets/demo."""
    import torch
    os.makedirs(osp.join(root, 'options', 'study'))
    for s, opt in demo_stages().items():
        opt['network_g'] = dict(STUDENT_G)
        opt['sdakd']['teacher_g']['network'] = dict(TEACHER_G)
        if 'taps' in opt['sdakd']:
            opt['sdakd']['taps'] = list(TAPS)
        for key, feat in (('network_d', 4), ('network_d_teacher', 8)):
            if key in opt:
                opt[key]['num_feat'] = feat
        opt['num_gpu'] = 0
        with open(osp.join(root, 'options', 'study', f'sdakd_demo_stage{s}.yml'), 'w') as f:
            yaml.safe_dump(opt, f)
    os.makedirs(osp.join(root, 'experiments', 'pretrained_models'))
    torch.manual_seed(0)
    torch.save({'params_ema': build(TEACHER_G).state_dict()},
               osp.join(root, 'experiments', 'pretrained_models', 'RealESRGAN_x4plus_ncnn.pth'))
    data = osp.join(root, 'datasets', 'demo')
    for part, n, size in (('train', 3, 64), ('heldout', 2, 128)):
        write_images(osp.join(data, part, 'gt'), n, size, seed=7)
        os.makedirs(osp.join(data, part, 'lq'))
        for name in os.listdir(osp.join(data, part, 'gt')):
            img = cv2.imread(osp.join(data, part, 'gt', name))
            small = cv2.resize(img, (size // 4, size // 4), interpolation=cv2.INTER_AREA)
            cv2.imwrite(osp.join(data, part, 'lq', name), small)
    with open(osp.join(data, 'train', 'meta_info.txt'), 'w') as f:
        f.write(''.join(f'{n} (64,64,3)\n' for n in sorted(os.listdir(osp.join(data, 'train', 'gt')))))
    from sdakd_basicsr.data.demo_images import DATA_VERSION
    open(osp.join(data, f'.complete_v{DATA_VERSION}'), 'w').close()


def test_study_command_end_to_end_on_tiny_networks_and_resume(tmp_path, monkeypatch, capsys):
    from sdakd_basicsr.tools import study
    _tiny_demo_root(tmp_path)
    monkeypatch.chdir(tmp_path)
    args = ['--iters', '2,2,2,2', '--seeds', '0,1', '--arms', 'sdakd,kd_only', '--jobs', '2', '--out', 'study']
    assert study.main(args) == 0
    text = open('study/study.md').read()
    assert '(b) baseline sdakd vs kd_only' in text and 'Protocol' in text and 'Wall time' in text
    # LPIPS: a column when its weights are on disk, otherwise a note naming the missing file
    assert '| LPIPS vs teacher |' in text or 'LPIPS not computed: ' in text and 'alexnet-owt-7be5be79.pth' in text
    rows = list(csv.DictReader(open('study/study.csv')))
    assert sorted((r['arm'], r['seed']) for r in rows) == [('kd_only', '0'), ('kd_only', '1'), ('sdakd', '0'),
                                                           ('sdakd', '1')]
    assert all(np.isfinite(float(r['psnr_teacher'])) and float(r['hf_ratio']) > 0 for r in rows)
    for file in ('margins.png', 'grads.png', 'grid.png'):
        assert osp.getsize(osp.join('study', file)) > 1000
    # the teacher never ran in training: every stage read the cache
    assert osp.isfile('datasets/demo/train/teacher_cache_study.pt')
    log = open(sorted(__import__('glob').glob('experiments/study_s0_stage3_sdakd/train_*.log'))[-1]).read()
    assert 'TeacherCachedPairedDataset' in log
    capsys.readouterr()
    # resume: everything finished is skipped, the report is the same
    assert study.main(args) == 0
    assert '0 to go' in capsys.readouterr().out
    assert sorted(map(dict.items, csv.DictReader(open('study/study.csv')))) == sorted(map(dict.items, rows))
