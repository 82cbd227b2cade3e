"""The shipped stage files through BasicSR's train_pipeline: hand-off, resume, NaN stop, entry points."""
import glob
import hashlib
import os
import subprocess
import sys
from os import path as osp

import pytest
import torch

from sdakd_basicsr.models.sdakd_model import SDAKDModel

from tests.helpers import REPO, STUDENT_G, build, checkpointed_stage1, tiny_options, write_options


def sha(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_three_stages_run_in_sequence_and_hand_off_by_path(run_train):
    written = {}
    for stage in (1, 2, 3):
        exp = run_train(tiny_options(stage, total_iter=2, val=True))
        written[stage] = sorted(os.listdir(osp.join(exp, 'models')))
    assert written[1] == ['net_g_2.pth', 'net_g_latest.pth']
    assert written[2] == ['net_adapters_2.pth', 'net_adapters_latest.pth', 'net_d_2.pth', 'net_d_latest.pth',
                          'net_g_2.pth', 'net_g_latest.pth']
    assert 'net_d_teacher_latest.pth' in written[3] and 'net_adapters_latest.pth' in written[3]
    assert not any('partial' in f for files in written.values() for f in files)
    # stage 3 started from stage 2's EMA generator and adapters: its log says where it loaded them from
    log = open(glob.glob('experiments/sdakd_realesrgan_x4_w0.5_stage3/train_*.log')[0]).read()
    assert 'sdakd_realesrgan_x4_w0.5_stage2/models/net_g_latest.pth, with param key: [params_ema]' in log
    assert 'sdakd_realesrgan_x4_w0.5_stage2/models/net_adapters_latest.pth' in log
    assert 'psnr_teacher' in log
    # the final student is an ordinary BasicSR checkpoint
    build(STUDENT_G).load_state_dict(
        torch.load('experiments/sdakd_realesrgan_x4_w0.5_stage3/models/net_g_latest.pth')['params_ema'], strict=True)


def test_auto_resume_continues_with_the_saved_optimizer_and_scheduler_state(monkeypatch, run_train):
    opt = checkpointed_stage1()
    seen = []
    original = SDAKDModel.optimize_parameters

    def interrupted(self, current_iter):
        seen.append(current_iter)
        if current_iter == 3 and len(seen) == 3:
            raise KeyboardInterrupt  # the job is killed mid-stage, after the checkpoint at iteration 2
        original(self, current_iter)

    monkeypatch.setattr(SDAKDModel, 'optimize_parameters', interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_train(opt)
    exp = 'experiments/' + opt['name']
    assert sorted(f for f in os.listdir(f'{exp}/training_states') if f.endswith('.state')) == ['2.state']
    # written aside, then renamed: no temporary file is left behind
    assert not [f for d in ('training_states', 'models') for f in os.listdir(f'{exp}/{d}') if 'partial' in f]
    saved = torch.load(f'{exp}/training_states/2.state')
    saved_g = torch.load(f'{exp}/models/net_g_2.pth')

    resumed = {}
    original_resume = SDAKDModel.resume_training

    def record(self, state):
        original_resume(self, state)
        resumed['model'] = self
        resumed['optim'] = {k: v.clone() for k, v in self.optimizers[0].state_dict()['state'][0].items()}
        resumed['sched'] = self.schedulers[0].state_dict()
        resumed['g'] = {k: v.clone() for k, v in self.net_g.state_dict().items()}

    monkeypatch.setattr(SDAKDModel, 'resume_training', record)
    run_train(opt, '--auto_resume')
    assert seen == [1, 2, 3, 3, 4]  # continued from the saved iteration
    for k, v in saved['optimizers'][0]['state'][0].items():
        assert torch.equal(resumed['optim'][k], v)
    assert resumed['sched'] == saved['schedulers'][0]
    assert all(torch.equal(resumed['g'][k], v) for k, v in saved_g['params'].items())
    assert not glob.glob('experiments/*archived*')  # the interrupted experiment was not archived
    assert osp.isfile(f'{exp}/models/net_g_latest.pth')


def test_nan_loss_stops_with_iteration_and_term_and_keeps_the_last_checkpoint(monkeypatch, run_train):
    opt = checkpointed_stage1()
    original = SDAKDModel.feed_data

    def poisoned(self, data):
        original(self, data)
        if getattr(self, '_fed', 0) == 2:  # the third batch is broken
            self.lq = self.lq * float('nan')
        self._fed = getattr(self, '_fed', 0) + 1

    monkeypatch.setattr(SDAKDModel, 'feed_data', poisoned)
    exp = 'experiments/' + opt['name']
    with pytest.raises(FloatingPointError, match=r'l_g_pix = nan at iteration 3'):
        run_train(opt)
    ckpt = f'{exp}/models/net_g_2.pth'
    weights = torch.load(ckpt)['params']
    assert all(torch.isfinite(v).all() for v in weights.values())
    assert not osp.exists(f'{exp}/models/net_g_latest.pth')
    assert sorted(os.listdir(f'{exp}/models')) == ['net_g_2.pth']


def _tiny_script_options(workdir):
    opt = tiny_options(1, total_iter=1)
    opt['path']['pretrain_network_g'] = None
    opt['name'] = 'cli_run'
    return write_options(opt, 'options/cli_run.yml')


@pytest.mark.parametrize('entry', [['sdakd_basicsr/train.py'], ['-m', 'sdakd_basicsr.train']])
def test_entry_points_use_the_current_directory_as_root(workdir, entry):
    """Run from the user's folder (not the repository): experiments, data and checkpoints resolve there."""
    yml = _tiny_script_options(workdir)
    if entry[0].endswith('.py'):
        entry = [osp.join(REPO, entry[0])]
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run([sys.executable, *entry, '-opt', yml, '--local-rank=0'], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert osp.isfile(osp.join(workdir, 'experiments/cli_run/models/net_g_latest.pth'))
    assert not osp.exists(osp.join(REPO, 'experiments/cli_run'))


def test_student_is_testable_with_basicsr_srmodel(run_train):
    """The shipped test option file: BasicSR's SRModel + a plain RRDBNet load and test the student."""
    import yaml
    run_train(tiny_options(1, total_iter=1, **{'path.pretrain_network_g': None}))
    with open('options/test/test_sdakd_student_x4_w0.5.yml') as f:
        opt = yaml.safe_load(f)
    assert opt['model_type'] == 'SRModel' and opt['network_g']['type'] == 'RRDBNet'
    opt['num_gpu'] = 0
    opt['network_g'].update(STUDENT_G)
    opt['path']['pretrain_network_g'] = 'experiments/sdakd_realesrgan_x4_w0.5_stage1/models/net_g_latest.pth'
    opt['datasets']['test_1'].update(dataroot_gt='datasets/val/gt', dataroot_lq='datasets/val/lq', filename_tmpl='{}')
    write_options(opt, 'options/test/tiny_test.yml')
    from basicsr.test import test_pipeline
    sys.argv = ['test.py', '-opt', 'options/test/tiny_test.yml']
    test_pipeline(os.getcwd())
    images = glob.glob(f'results/{opt["name"]}/visualization/DIV2K_valid/*.png')
    assert len(images) == 2


def test_auto_resume_of_a_stage_initialised_from_the_teacher(monkeypatch, run_train):
    """Resume points path.pretrain_network_g at the saved student: no conflict, and no second initialisation."""
    opt = tiny_options(1, total_iter=3, **{'path.pretrain_network_g': None, 'sdakd.init_student_from_teacher': True,
                                           'network_g.num_feat': 8, 'network_g.num_grow_ch': 4})
    opt['logger']['save_checkpoint_freq'] = 2
    original = SDAKDModel.optimize_parameters
    inits = []
    original_init = SDAKDModel._init_student_from_teacher

    def interrupted(self, current_iter):
        if current_iter == 3 and not inits[1:]:
            inits.append('interrupted')
            raise KeyboardInterrupt
        original(self, current_iter)

    def counted_init(self):
        inits.append('init')
        original_init(self)

    monkeypatch.setattr(SDAKDModel, 'optimize_parameters', interrupted)
    monkeypatch.setattr(SDAKDModel, '_init_student_from_teacher', counted_init)
    with pytest.raises(KeyboardInterrupt):
        run_train(opt)
    run_train(opt, '--auto_resume')
    assert inits == ['init', 'interrupted']  # initialised once, in the first run only
    assert osp.isfile(f'experiments/{opt["name"]}/models/net_g_latest.pth')


def test_validation_with_teacher_fidelity_only(run_train):
    """No val.metrics at all: psnr_teacher alone is logged (basicsr's own initialiser would fail)."""
    opt = tiny_options(1, total_iter=2, val=True, **{'path.pretrain_network_g': None})
    opt['val'].pop('metrics')
    exp = run_train(opt)
    log = open(glob.glob(osp.join(exp, 'train_*.log'))[0]).read()
    assert '# psnr_teacher:' in log and '# psnr:' not in log
