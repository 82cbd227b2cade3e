"""Resume is exact: a run stopped mid-epoch and continued with --auto_resume ends with the same weights, bit for
bit, as a run that never stopped (CPU, prefetch ~). The training state carries every RNG, the loader's position
in the epoch and the training-pair queue; options that differ at resume are applied, listed or refused."""
import glob
import os

import pytest
import torch

from sdakd_basicsr.models.sdakd_model import SDAKDModel

from tests.helpers import tiny_options

NO_PREV = {'path.pretrain_network_g': None, 'path.pretrain_network_d': None, 'path.pretrain_network_adapters': None}


def stage3(name: str, total_iter: int = 7) -> dict:
    opt = tiny_options(3, total_iter=total_iter, **NO_PREV)  # 4 images, batch 2: an epoch is 2 iterations
    opt['name'] = name
    opt['logger']['save_checkpoint_freq'] = 3  # the state at 3 is one batch into an epoch
    return opt


def weights(name: str) -> dict:
    out = {}
    for path in sorted(glob.glob(f'experiments/{name}/models/net_*_latest.pth')):
        for key, params in torch.load(path).items():
            for k, v in params.items():
                out[f'{os.path.basename(path)}:{key}:{k}'] = v
    return out


def stop_at(monkeypatch, iteration: int) -> None:
    original = SDAKDModel.optimize_parameters
    calls = []

    def killed(self, current_iter):
        calls.append(current_iter)
        if current_iter == iteration and len(calls) == iteration:
            raise KeyboardInterrupt  # as kill -9 mid-iteration: nothing after the last saved state survives
        original(self, current_iter)
    monkeypatch.setattr(SDAKDModel, 'optimize_parameters', killed)


def test_stop_and_auto_resume_equals_the_uninterrupted_run_bit_for_bit(monkeypatch, run_train):
    run_train(stage3('straight'))
    stop_at(monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        run_train(stage3('stopped'))
    state = torch.load('experiments/stopped/training_states/3.state', weights_only=False)
    assert state['data_position']['batches'] == 1 and state['queue'] is not None  # mid-epoch, with the pair pool
    run_train(stage3('stopped'), '--auto_resume')
    straight, resumed = weights('straight'), weights('stopped')
    assert straight.keys() == resumed.keys() and any('net_d_teacher' in k for k in straight)
    differ = [k for k in straight if not torch.equal(straight[k], resumed[k])]
    assert not differ, f'{len(differ)} of {len(straight)} tensors differ, e.g. {differ[:3]}'


def test_option_changes_at_resume_are_applied_listed_or_refused(run_train):
    opt = stage3('changes', total_iter=3)
    run_train(opt)
    dropped = stage3('changes', total_iter=5)
    dropped['sdakd']['adversarial'] = ['student']  # a discriminator dropped before the resume
    with pytest.raises(ValueError, match=r"sdakd.adversarial: \['student', 'teacher'\] -> \['student'\]"):
        run_train(dropped, '--auto_resume')
    more = stage3('changes', total_iter=5)
    more['train']['optim_g']['lr'] = 5e-5
    more['logger']['print_freq'] = 2
    run_train(more, '--auto_resume')
    text = open(sorted(glob.glob('experiments/changes/train_changes_*.log'))[-1]).read()
    assert 'applied option change train.optim_g.lr: 0.0001 -> 5e-05' in text
    assert 'applied option change train.total_iter: 3 -> 5' in text
    assert 'without effect on training: logger.print_freq: 1 -> 2' in text


def test_kill_9_at_any_moment_then_auto_resume_equals_the_uninterrupted_run(run_train):
    """A real SIGKILL of a training process, as soon as its first training state is on disk (wherever the run
    then is: mid-iteration, mid-save, ...), and --auto_resume: the same weights as a run that never stopped."""
    import signal
    import subprocess
    import sys
    import time

    from tests.helpers import REPO, write_options
    run_train(stage3('straight'))
    path = write_options(stage3('killed'), 'options/_killed.yml')
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS=str(torch.get_num_threads()))  # same numerics
    proc = subprocess.Popen([sys.executable, '-m', 'sdakd_basicsr.train', '-opt', path], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not os.path.exists('experiments/killed/training_states/3.state') and time.time() < deadline:
        assert proc.poll() is None, 'the run ended before its first save'
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not os.path.exists('experiments/killed/models/net_g_latest.pth')  # it really was stopped
    run_train(stage3('killed'), '--auto_resume')
    straight, resumed = weights('straight'), weights('killed')
    differ = [k for k in straight if not torch.equal(straight[k], resumed[k])]
    assert straight.keys() == resumed.keys() and not differ, differ[:3]
