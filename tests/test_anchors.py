"""The anchors study (recipes/anchors.py, tools/anchors.py): each arm's tail does what its row says, the budgets are
equal in wall-clock, and the verdict rules fixed before the run decide as written."""
import os
from os import path as osp

import pytest

from sdakd_basicsr.distill.options import parse_sdakd_options
from sdakd_basicsr.recipes import anchors as an
from sdakd_basicsr.recipes import demo

from tests.helpers import REPO


@pytest.fixture(scope='module')
def stages():
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        return demo.load_stages(demo.demo_student().options_dir)
    finally:
        os.chdir(cwd)


@pytest.fixture(scope='module')
def runs(stages):
    iterations = an.tail_iterations({k: 1.0 for k in an.phases(an.ARM_NAMES)}, 100, an.ARM_NAMES)
    return {r.name: r for r in an.plan(stages, an.ARM_NAMES, [0, 1], iterations, 100)}


def resolved(run):
    return parse_sdakd_options(dict(run.opt, is_train=True))


def test_every_arm_and_seed_is_planned_and_seeds_differ(runs):
    assert {an.final_run(a, s, 100) for a in an.ARM_NAMES for s in (0, 1)} <= set(runs)
    assert runs['anchors_b100_s0_kd'].opt['manual_seed'] != runs['anchors_b100_s1_kd'].opt['manual_seed']
    # common random numbers: within a seed, arms on the same stage file draw the same batches
    assert runs['anchors_b100_s0_kd'].opt['manual_seed'] == runs['anchors_b100_s0_texture'].opt['manual_seed']


def test_each_arm_trains_what_its_row_says(runs):
    kd = resolved(runs['anchors_b100_s0_kd'])
    assert kd.policy.adversarial == () and kd.policy.kd and not kd.policy.fmd and kd.policy.texture == ()
    assert not {'network_d', 'network_d_teacher'} & set(runs['anchors_b100_s0_kd'].opt)
    eco = resolved(runs['anchors_b100_s0_eco'])
    assert eco.policy.texture == ('blend', ) and not eco.policy.kd and eco.train.pixel_opt is None
    gan = resolved(runs['anchors_b100_s0_gan_dt'])
    assert gan.policy.adversarial == ('teacher', ) and gan.policy.train_d_teacher and not gan.policy.fmd
    assert runs['anchors_b100_s0_gan_dt'].opt['path']['pretrain_network_d_teacher'] == an.D_TEACHER
    s2, s3 = resolved(runs['anchors_b100_s0_sdakd_2']), resolved(runs['anchors_b100_s0_sdakd_3'])
    assert s2.policy.adversarial == ('student', ) and s2.policy.fmd
    assert s3.policy.adversarial == ('student', 'teacher') and s3.policy.fmd
    path3 = runs['anchors_b100_s0_sdakd_3'].opt['path']
    assert path3['pretrain_network_g'].startswith('experiments/anchors_b100_s0_sdakd_2/')
    assert path3['pretrain_network_d'].startswith('experiments/anchors_b100_s0_sdakd_2/')
    assert path3['pretrain_network_adapters'].startswith('experiments/anchors_b100_s0_sdakd_2/')
    assert path3['pretrain_network_d_teacher'] == an.D_TEACHER  # stage 2 did not train D_T
    assert runs['anchors_b100_s0_sdakd_3'].after == ('anchors_b100_s0_sdakd_2', )
    e2, e3 = resolved(runs['anchors_b100_s0_sdakd_texture_2']), resolved(runs['anchors_b100_s0_sdakd_texture_3'])
    assert set(e2.policy.texture) == {'hf', 'patch', 'd_feat'}
    assert set(e3.policy.texture) == {'hf', 'patch', 'd_feat', 'ldl'}
    tex = resolved(runs['anchors_b100_s0_texture'])
    assert set(tex.policy.texture) == {'hf', 'patch'} and tex.policy.kd and tex.policy.adversarial == ()
    assert 'network_d_teacher' not in runs['anchors_b100_s0_texture'].opt
    for name in ('anchors_b100_s0_kd', 'anchors_b100_s0_eco', 'anchors_b100_s0_texture'):
        assert 'd_crop_size' not in runs[name].opt['train']  # no discriminator: the cheap settings stay out
    for name in ('anchors_b100_s0_gan_dt', 'anchors_b100_s0_sdakd_2', 'anchors_b100_s0_sdakd_texture_3'):
        assert runs[name].opt['train']['d_crop_size'] == an.CHEAP_ADVERSARY['d_crop_size']


def test_the_tails_share_the_start_and_the_losses_of_arm_a(runs):
    for run in runs.values():
        if not run.after:
            assert run.opt['path']['pretrain_network_g'] == an.START_G
        train = run.opt['train']
        if 'blend_opt' not in train:
            assert train['pixel_opt']['loss_weight'] == an.GT_WEIGHT and train['kd_opt']['loss_weight'] == an.KD_WEIGHT


def test_budgets_are_equal_in_seconds():
    spi = {'kd': 0.2, 'eco': 0.25, 'gan_dt': 1.3, 'sdakd_s2': 0.7, 'sdakd_s3': 1.9, 'sdakd_texture_s2': 0.9,
           'sdakd_texture_s3': 2.2, 'texture': 0.4}
    iters = an.tail_iterations(spi, 300, an.ARM_NAMES)
    for arm in an.ARM_NAMES:
        seconds = sum(iters[p.key] * spi[p.key] for p in an.ARMS[arm].phases)
        assert seconds == pytest.approx(300, rel=0.02), arm
    assert iters['sdakd_s2'] * spi['sdakd_s2'] == pytest.approx(150, rel=0.02)


def test_unknown_arm_is_named():
    with pytest.raises(KeyError, match='unknown arm'):
        an.phases(['kd', 'sdakdd'])


@pytest.mark.parametrize('x, y, expected', [
    # lower NIQE beyond the spread, HF not worse, fidelity equal: beats
    ({'niqe': [4.0, 4.1, 4.2], 'hf_ratio': [0.8, 0.8, 0.8], 'psnr_teacher': [25, 25, 25]},
     {'niqe': [5.0, 5.1, 5.2], 'hf_ratio': [0.8, 0.8, 0.8], 'psnr_teacher': [25, 25, 25]}, True),
    # the same look gain bought with 0.5 dB of fidelity: no
    ({'niqe': [4.0, 4.1, 4.2], 'hf_ratio': [0.8, 0.8, 0.8], 'psnr_teacher': [24.5, 24.5, 24.5]},
     {'niqe': [5.0, 5.1, 5.2], 'hf_ratio': [0.8, 0.8, 0.8], 'psnr_teacher': [25, 25, 25]}, False),
    # within the seed spread: no
    ({'niqe': [4.0, 5.0, 6.0], 'hf_ratio': [0.8, 0.8, 0.8], 'psnr_teacher': [25, 25, 25]},
     {'niqe': [5.0, 5.1, 5.2], 'hf_ratio': [0.8, 0.8, 0.8], 'psnr_teacher': [25, 25, 25]}, False),
    # better NIQE but over-sharpened beyond the spread (|HF - 1| worse): no
    ({'niqe': [4.0, 4.1, 4.2], 'hf_ratio': [1.6, 1.6, 1.6], 'psnr_teacher': [25, 25, 25]},
     {'niqe': [5.0, 5.1, 5.2], 'hf_ratio': [0.9, 0.9, 0.9], 'psnr_teacher': [25, 25, 25]}, False),
])
def test_look_at_equal_fidelity_rule(x, y, expected):
    assert an.beats(x, y)[0] is expected


def test_winner_meets_most_targets_then_lowest_niqe():
    assert an.winner({'kd': (3, 6.0), 'texture': (5, 4.5), 'sdakd': (5, 4.0)}) == 'sdakd'
    assert an.winner({'kd': (6, 6.0), 'texture': (5, 4.5)}) == 'kd'


def test_iteration_time_is_read_from_the_training_log(tmp_path, monkeypatch):
    from sdakd_basicsr.tools import anchors as tool
    monkeypatch.chdir(tmp_path)
    os.makedirs(osp.join('experiments', 'run'))
    with open(osp.join('experiments', 'run', 'train_run_1.log'), 'w') as f:
        f.write('[eta: 0:00:10, time (data): 0.900 (0.002)] l_g_pix: 1\n[eta: 0:00:05, time (data): 0.512 (0.002)]\n')
    assert tool.seconds_per_iteration('run') == pytest.approx(0.512)
    os.makedirs(osp.join('experiments', 'empty'))
    with pytest.raises(FileNotFoundError, match='no training log'):
        tool.seconds_per_iteration('empty')


def test_runner_skips_a_finished_run_only_with_the_same_options(tmp_path, monkeypatch):
    """A study rerun reuses a finished run only if it was run with the same options and iterations: another budget or
    changed options are refused by name instead of reported under the wrong plan."""
    from sdakd_basicsr.recipes import runner
    from sdakd_basicsr.recipes.study import Run
    monkeypatch.chdir(tmp_path)
    run = Run('anchors_b60_s0_kd', 1, {'name': 'anchors_b60_s0_kd', 'train': {'kd_opt': {'loss_weight': 1.0}}}, 100)
    assert not runner.is_done(run) and runner.read_marker(run.name) is None
    (tmp_path / 'experiments' / run.name).mkdir(parents=True)
    (tmp_path / 'experiments' / run.name / runner.DONE).write_text(f'61.5 {runner.fingerprint(run)}\n')
    assert runner.is_done(run) and runner.read_marker(run.name)['wall_s'] == 61.5
    for other in (Run(run.name, 1, run.opt, 400),
                  Run(run.name, 1, {'name': run.name, 'train': {'kd_opt': {'loss_weight': 2.0}}}, 100)):
        with pytest.raises(SystemExit, match='anchors_b60_s0_kd finished with other options'):
            runner.is_done(other)
    (tmp_path / 'experiments' / run.name / runner.DONE).write_text('61.5\n')  # a marker from before fingerprints
    with pytest.raises(SystemExit, match='move that folder away'):
        runner.is_done(run)
