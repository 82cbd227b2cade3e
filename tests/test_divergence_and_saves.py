"""Saving never destroys (a failed write leaves the previous file intact and names the cause); a diverged
network is caught before anything is written; a learning rate lowered for the resume is applied."""
import errno
import glob
import os

import pytest
import torch

from sdakd_basicsr import checkpoints
from sdakd_basicsr.models.sdakd_model import SDAKDModel

from tests.helpers import checkpointed_stage1, tiny_options


def test_a_full_disk_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = str(tmp_path / 'net_g_latest.pth')
    checkpoints.atomic_save({'params': {'w': torch.ones(3)}}, path)
    real_save = torch.save

    def disk_full(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)  # half of the bytes reach the disk, then the device is full
        f.truncate(f.tell() // 2)
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(torch, 'save', disk_full)
    with pytest.raises(OSError, match=r'could not write .*net_g_latest\.pth: no space left on the device'):
        checkpoints.atomic_save({'params': {'w': torch.zeros(3)}}, path)
    assert torch.equal(torch.load(path)['params']['w'], torch.ones(3))
    assert os.listdir(tmp_path) == ['net_g_latest.pth']  # no temporary file left behind


def test_a_write_that_cannot_be_read_back_never_replaces_the_file(tmp_path, monkeypatch):
    path = str(tmp_path / 'state.state')
    checkpoints.atomic_save({'iter': 1}, path)
    real_save = torch.save
    monkeypatch.setattr(torch, 'save', lambda obj, f, *a, **k: (real_save(obj, f), f.truncate(10)))
    monkeypatch.setattr(checkpoints.time, 'sleep', lambda s: None)
    with pytest.raises(OSError, match='state.state'):
        checkpoints.atomic_save({'iter': 2}, path)
    assert torch.load(path)['iter'] == 1


def test_diverged_weights_stop_the_run_before_anything_is_written(monkeypatch, run_train):
    opt = checkpointed_stage1()
    original = SDAKDModel.optimize_parameters

    def diverging(self, current_iter):
        original(self, current_iter)
        if current_iter == 3:
            with torch.no_grad():
                next(self.net_g.parameters()).mul_(1e30)

    monkeypatch.setattr(SDAKDModel, 'optimize_parameters', diverging)
    with pytest.raises(FloatingPointError) as info:
        run_train(opt)
    message = str(info.value)
    assert 'net_g.' in message and 'iteration 4' in message and '--auto_resume' in message
    assert 'train:optim_g:lr=0.00005' in message  # half the configured 1e-4, as a decimal --force_yml reads
    exp = f'experiments/{opt["name"]}'
    assert sorted(os.listdir(f'{exp}/models')) == ['net_g_2.pth']  # iteration 4 was never written
    saved = torch.load(f'{exp}/models/net_g_2.pth')['params']
    assert all(torch.isfinite(v).all() and v.abs().max() < 1e3 for v in saved.values())


def test_a_learning_rate_lowered_for_the_resume_is_applied(monkeypatch, run_train):
    opt = checkpointed_stage1()
    original = SDAKDModel.optimize_parameters

    def interrupted(self, current_iter):
        if current_iter == 3:
            raise KeyboardInterrupt
        original(self, current_iter)

    monkeypatch.setattr(SDAKDModel, 'optimize_parameters', interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_train(opt)
    monkeypatch.setattr(SDAKDModel, 'optimize_parameters', original)
    seen = {}
    original_resume = SDAKDModel.resume_training

    def record(self, state):
        original_resume(self, state)
        seen['lr'] = [g['lr'] for g in self.optimizers[0].param_groups]
        seen['base'] = list(self.schedulers[0].base_lrs)

    monkeypatch.setattr(SDAKDModel, 'resume_training', record)
    run_train(opt, '--auto_resume', '--force_yml', 'train:optim_g:lr=0.00005')  # as the stop message says
    assert seen['lr'] == [5e-5] and seen['base'] == [5e-5]
    log = open(sorted(glob.glob(f'experiments/{opt["name"]}/train_*.log'))[-1]).read()
    assert 'train.optim_g.lr changed at resume: 0.0001 -> 5e-05 (applied' in log


def test_frozen_and_absent_networks_are_not_checked(build_model_from):
    no_prev = {f'path.pretrain_network_{k}': None for k in ('g', 'd', 'adapters')}
    model = build_model_from(tiny_options(3, **{'sdakd.train_d_teacher': False, **no_prev}))
    with torch.no_grad():
        next(model.net_d_teacher.parameters()).fill_(float('nan'))  # frozen: never trained, never saved as trained
    model.precision.check_weights({'net_d_teacher': model.net_d_teacher, 'net_x': None}, 1, 1e4, 'hint')
    with torch.no_grad():
        next(model.net_g.parameters()).fill_(float('inf'))
    with pytest.raises(FloatingPointError, match='net_g'):
        model.precision.check_weights({'net_g': model.net_g}, 1, 1e4, 'hint')
