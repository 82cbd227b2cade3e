"""Checks before BasicSR touches the disk (a failing start never archives the previous run), the device
check, and the experiment lock."""
import os
import subprocess
import sys

import pytest
import torch

from sdakd_basicsr.distill.preflight import ExperimentLock, check_device, read_options

from tests.helpers import tiny_options


def test_a_bad_option_without_auto_resume_archives_nothing(run_train):
    opt = tiny_options(1, total_iter=1, **{'path.pretrain_network_g': None})
    run_train(opt)
    before = sorted(os.listdir('experiments'))
    with pytest.raises(KeyError, match='bogus'):
        run_train(tiny_options(1, total_iter=1, **{'path.pretrain_network_g': None, 'sdakd.bogus': 1}))
    assert sorted(os.listdir('experiments')) == before  # no <name>_archived_<time>, no new folder
    assert not any('archived' in d for d in os.listdir('experiments'))


def test_options_are_resolved_once_and_the_model_receives_them(monkeypatch, run_train, build_model_from):
    """train.py: the pre-flight resolves (every check), the model takes that resolution (a resume too); a model
    built from Python resolves through the same function; basicsr's --debug changes the options, so they are
    resolved again."""
    from sdakd_basicsr.distill import options

    checks = []
    real = options.check_option_file
    monkeypatch.setattr(options, 'check_option_file', lambda opt: (checks.append(opt.get('name')), real(opt))[1])
    opt = tiny_options(1, total_iter=1, **{'path.pretrain_network_g': None})
    run_train(opt)
    assert checks == [opt['name']] and not options._HANDED_OVER  # one resolution, taken by the model
    model = build_model_from(opt)
    assert checks == [opt['name']] * 2 and model.sd.stage == 1
    # a resume: basicsr rewrites path.pretrain_* to the saved networks; the hand-over still holds
    run_train(dict(opt, train=dict(opt['train'], total_iter=2)), '--auto_resume')
    assert checks == [opt['name']] * 3 and not options._HANDED_OVER
    assert os.path.isfile(f'experiments/{opt["name"]}/models/net_g_2.pth')
    checks.clear()
    run_train(dict(opt, name='second'), '--debug')
    assert checks == ['second', 'debug_second'] and not options._HANDED_OVER  # not the same options: used up


def test_force_yml_is_applied_as_basicsr_applies_it(workdir):
    from tests.helpers import write_options
    path = write_options(tiny_options(2), 'options/_x.yml')
    opt = read_options(['-opt', path, '--force_yml', 'train:optim_g:lr=0.00005', 'sdakd:amp=~', '--auto_resume'])
    assert opt['train']['optim_g']['lr'] == 5e-5 and opt['sdakd']['amp'] is None
    # basicsr reads 5e-5 as a string: refused before anything runs, with the key and the way to write it
    from sdakd_basicsr.distill.preflight import check_options
    opt = read_options(['-opt', path, '--force_yml', 'train:optim_g:lr=5e-5'])
    assert opt['train']['optim_g']['lr'] == '5e-5'
    with pytest.raises(ValueError, match=r"_x.yml: train.optim_g.lr must be a number, got '5e-5' .*write a decimal"):
        check_options(opt, 'options/_x.yml', os.getcwd())
    with pytest.raises(KeyError, match='nope'):
        read_options(['-opt', path, '--force_yml', 'nope:x=1'])


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU-only message')
def test_gpu_settings_without_cuda_name_the_keys_and_the_cpu_line():
    with pytest.raises(RuntimeError, match=r'num_gpu: 1, datasets.train.prefetch_mode: cuda.*--force_yml num_gpu=0'):
        check_device({'num_gpu': 1, 'datasets': {'train': {'prefetch_mode': 'cuda'}}}, 'x.yml')
    check_device({'num_gpu': 'auto', 'datasets': {'train': {'prefetch_mode': None}}}, 'x.yml')


def test_a_live_run_holds_its_experiment_and_a_stale_lock_is_taken_over(tmp_path):
    first = ExperimentLock(str(tmp_path), 'exp')
    first.acquire()
    with pytest.raises(RuntimeError, match=f'in use by another run .*PID {os.getpid()}'):
        ExperimentLock(str(tmp_path), 'exp').acquire()
    first.release()
    # a lock left by a process that is gone
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    with open(tmp_path / 'experiments' / 'exp.lock', 'w') as f:
        f.write(f'{__import__("socket").gethostname()} {dead.pid}\n')
    messages = []
    second = ExperimentLock(str(tmp_path), 'exp')
    second.acquire(log=messages.append)
    assert 'stale lock' in messages[0] and second.owned
    second.release()
    assert not (tmp_path / 'experiments' / 'exp.lock').exists()
