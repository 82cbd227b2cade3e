"""DDP on CPU (gloo): a 2-process run equals a 1-process run with the same global batch, ranks agree."""
import glob
import os
import re
import socket
import subprocess
import sys
from os import path as osp

import pytest
import torch

from tests.helpers import REPO, tiny_options, write_images, write_options


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def deterministic(stage, name):
    """Paired data the size of the crop, no flips: every process sees exactly the same pixels."""
    no_pretrained = {f'path.pretrain_network_{net}': None for net in ('g', 'd', 'adapters')}
    opt = tiny_options(stage, total_iter=2, val=True, **no_pretrained)
    opt.update(name=name, high_order_degradation=False, manual_seed=0, dist_params={'backend': 'gloo', 'port': 0})
    opt['datasets']['train'] = dict(name='pairs', type='PairedImageDataset', dataroot_gt='datasets/val/gt',
                                    dataroot_lq='datasets/val/lq', filename_tmpl='{}', io_backend={'type': 'disk'},
                                    gt_size=32, use_hflip=False, use_rot=False, use_shuffle=True,
                                    num_worker_per_gpu=0, batch_size_per_gpu=2, dataset_enlarge_ratio=1,
                                    prefetch_mode=None)
    opt['queue_size'] = 2
    return opt


def run(opt, nproc):
    path = write_options(opt, f'options/{opt["name"]}.yml')
    worker = osp.join(REPO, 'tests', 'ddp_worker.py')
    if nproc == 1:
        cmd = [sys.executable, worker, '-opt', path]
    else:
        cmd = [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={nproc}', '--master_addr=127.0.0.1',
               f'--master_port={free_port()}', worker, '-opt', path, '--launcher', 'pytorch']
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]


def run_like_srun(opt, nproc, tmp_path):
    """What ``srun -n nproc python train.py --launcher slurm`` does: one process per task with the SLURM_*
    variables; a stand-in scontrol expands the compressed node list."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'scontrol').write_text('#!/bin/sh\necho 127.0.0.1\necho 127.0.0.2\n')
    (bin_dir / 'scontrol').chmod(0o755)
    path = write_options(opt, f'options/{opt["name"]}.yml')
    worker = osp.join(REPO, 'tests', 'ddp_worker.py')
    procs = []
    for rank in range(nproc):
        env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1', PATH=f'{bin_dir}:{os.environ["PATH"]}',
                   SLURM_PROCID=str(rank), SLURM_LOCALID=str(rank), SLURM_NTASKS=str(nproc),
                   SLURM_NODELIST='node[01-02]')
        for key in ('MASTER_ADDR', 'MASTER_PORT', 'RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
            env.pop(key, None)
        procs.append(subprocess.Popen([sys.executable, worker, '-opt', path, '--launcher', 'slurm'], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, out[-2000:] + err[-4000:]


@pytest.mark.parametrize('stage', [2, 3])
def test_two_gloo_processes_match_one_process_with_the_same_global_batch(workdir, stage):
    write_images('datasets/val/gt', 4, 32, seed=1)  # four pairs: two global batches of 2
    import cv2
    for name in os.listdir('datasets/val/gt'):
        img = cv2.imread(osp.join('datasets/val/gt', name))
        cv2.imwrite(osp.join('datasets/val/lq', name), cv2.resize(img, (8, 8), interpolation=cv2.INTER_CUBIC))
    single = deterministic(stage, f'ddp_ref{stage}')
    double = deterministic(stage, f'ddp_run{stage}')
    double['datasets']['train']['batch_size_per_gpu'] = 1  # 2 ranks x 1 = the same global batch of 2
    double['queue_size'] = 1
    run(single, 1)
    run(double, 2)
    ref, ref_init = torch.load(f'rank0_ddp_ref{stage}_final.pth'), torch.load(f'rank0_ddp_ref{stage}_init.pth')
    ranks = [torch.load(f'rank{r}_ddp_run{stage}_final.pth') for r in (0, 1)]
    assert set(ref) == set(ranks[0]) and ('net_d_teacher' in ref) == (stage == 3)
    wrapped = ranks[0].pop('_wrapped')
    ranks[1].pop('_wrapped')
    ref.pop('_wrapped')
    trained = {'net_g', 'net_d', 'net_adapters'} | ({'net_d_teacher'} if stage == 3 else set())
    assert {k for k, v in wrapped.items() if v == 'DistributedDataParallel'} == trained, wrapped
    assert wrapped['net_g_teacher'] == 'RRDBNet' and wrapped['net_g_ema'] == 'RRDBNet'  # never wrapped
    for net, state in ref.items():
        assert all(torch.equal(ranks[0][net][k], ranks[1][net][k]) for k in state), f'ranks differ in {net}'
        # the same training, up to float summation order: measured ~1e-6 of the update for every network.
        # (A rank-dependent loss network, e.g. a VGG initialised from basicsr's per-rank seed, gave ~2e-2.)
        params = [k for k in state if state[k].is_floating_point() and not k.endswith(('_u', '_v'))]
        update = torch.cat([(state[k] - ref_init[net][k]).flatten() for k in params])
        diff = torch.cat([(ranks[0][net][k] - state[k]).flatten() for k in params])
        assert update.norm() > 0, f'{net} did not train'
        assert diff.norm() < 1e-4 * update.norm(), \
            f'{net}: 2 ranks vs 1 process differ by {diff.norm() / update.norm():.3f}'
    assert osp.isfile(f'experiments/ddp_run{stage}/models/net_g_latest.pth')
    # validation ran on rank 0 only (one log, one block per validation: at iteration 2 and after training)
    # and, with the same weights, reports what the 1-process run reports
    logs = [open(glob.glob(f'experiments/{name}/train_{name}_*.log')[0]).read() for name in
            (f'ddp_ref{stage}', f'ddp_run{stage}')]
    assert [log.count('Validation tinyval') for log in logs] == [2, 2]
    psnr = [re.findall(r'# psnr_teacher: ([\d.]+)', log)[-1] for log in logs]
    assert abs(float(psnr[0]) - float(psnr[1])) < 0.01, psnr


def test_slurm_launcher_runs_on_cpu_and_matches_torchrun(workdir, tmp_path):
    write_images('datasets/val/gt', 4, 32, seed=1)
    import cv2
    for name in os.listdir('datasets/val/gt'):
        img = cv2.imread(osp.join('datasets/val/gt', name))
        cv2.imwrite(osp.join('datasets/val/lq', name), cv2.resize(img, (8, 8), interpolation=cv2.INTER_CUBIC))
    single = deterministic(2, 'slurm_ref')
    double = deterministic(2, 'slurm_run')
    double['datasets']['train']['batch_size_per_gpu'] = 1
    double['queue_size'] = 1
    double['dist_params']['port'] = free_port()  # basicsr passes dist_params to the slurm initialiser
    run(single, 1)
    run_like_srun(double, 2, tmp_path)
    ref = torch.load('rank0_slurm_ref_final.pth')['net_g']
    ranks = [torch.load(f'rank{r}_slurm_run_final.pth')['net_g'] for r in (0, 1)]
    assert all(torch.equal(ranks[0][k], ranks[1][k]) for k in ref)
    assert max((ranks[0][k] - ref[k]).abs().max().item() for k in ref) < 1e-5
    assert osp.isfile('experiments/slurm_run/models/net_g_latest.pth')


def test_slurm_launcher_outside_slurm_names_the_variables(monkeypatch):
    from sdakd_basicsr import compat
    for key in ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST', 'SLURM_LOCALID', 'MASTER_ADDR', 'MASTER_PORT',
                'RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
        monkeypatch.setenv(key, 'x')  # recorded, so whatever the function sets is undone after the test
        monkeypatch.delenv(key)
    with pytest.raises(RuntimeError, match='SLURM_PROCID, SLURM_NTASKS, SLURM_NODELIST.*srun'):
        compat.slurm_environment()
    monkeypatch.setenv('SLURM_PROCID', '1')
    monkeypatch.setenv('SLURM_NTASKS', '2')
    monkeypatch.setenv('SLURM_NODELIST', 'gpu-a,gpu-b')
    monkeypatch.setenv('MASTER_PORT', '1234')
    compat.slurm_environment(port=None)
    assert (os.environ['MASTER_ADDR'], os.environ['MASTER_PORT'], os.environ['RANK'], os.environ['WORLD_SIZE'],
            os.environ['LOCAL_RANK']) == ('gpu-a', '1234', '1', '2', '1')
    monkeypatch.setenv('PATH', '/nonexistent')
    monkeypatch.setenv('SLURM_NODELIST', 'gpu-[1-4]')
    with pytest.raises(RuntimeError, match='scontrol is not on PATH'):
        compat.slurm_environment()
