"""Shared fixtures: a prepared root (``workdir``), the pipeline (``run_train``) and a model (``build_model_from``)
on it; the integration tier's marker. Pure builders (option dicts, tiny networks, images) are in ``helpers.py``."""
import os
import shutil
from os import path as osp

import cv2
import pytest
import torch

import sdakd_basicsr  # noqa: F401  (compat + registration before anything imports basicsr)

from tests.helpers import REPO, TEACHER_D_FILE, TEACHER_G, TEACHER_G_FILE, build, prepared, write_images, write_options

torch.set_num_threads(2)


def write_official_teacher(root, seed: int = 0):
    """Teacher files in the official layout: G under params_ema, netD under params (weight_orig/_u/_v keys)."""
    from basicsr.archs.discriminator_arch import UNetDiscriminatorSN
    torch.manual_seed(seed)
    g = build(TEACHER_G)
    d = UNetDiscriminatorSN(3, num_feat=8)
    with torch.no_grad():  # converge spectral norm's power iteration, as in a trained checkpoint
        for _ in range(20):
            d(torch.rand(1, 3, 32, 32))
    os.makedirs(osp.join(root, 'experiments/pretrained_models'), exist_ok=True)
    torch.save({'params_ema': g.state_dict()}, osp.join(root, TEACHER_G_FILE))
    torch.save({'params': d.state_dict()}, osp.join(root, TEACHER_D_FILE))
    return g, d


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh root (the user's CWD): tiny teacher checkpoints, tiny data, the shipped options/ folder."""
    write_official_teacher(tmp_path)
    write_images(osp.join(tmp_path, 'datasets/gt'), 4, 96)
    # a paired validation set: GT 32x32, LR 8x8 (bicubic)
    write_images(osp.join(tmp_path, 'datasets/val/gt'), 2, 32, seed=1)
    os.makedirs(osp.join(tmp_path, 'datasets/val/lq'), exist_ok=True)
    for name in os.listdir(osp.join(tmp_path, 'datasets/val/gt')):
        img = cv2.imread(osp.join(tmp_path, 'datasets/val/gt', name))
        cv2.imwrite(osp.join(tmp_path, 'datasets/val/lq', name),
                    cv2.resize(img, (8, 8), interpolation=cv2.INTER_CUBIC))
    shutil.copytree(osp.join(REPO, 'options'), osp.join(tmp_path, 'options'))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def run_train(workdir):
    """``run_train(opt, *flags)``: the option dict through train.py (BasicSR's train_pipeline) in the root;
    returns the experiment folder."""
    from sdakd_basicsr.train import main

    def run(opt: dict, *flags: str) -> str:
        path = write_options(opt, f'options/_test_{opt["name"]}.yml')
        main(['-opt', path, *flags], root_path=os.getcwd())
        return osp.join('experiments', opt['name'])
    return run


@pytest.fixture
def build_model_from(workdir):
    """``build_model_from(opt)``: a model straight from an option dict in the root (no pipeline), as basicsr
    builds it after its parse_options."""
    from basicsr.models import build_model
    return lambda opt: build_model(prepared(opt))


# The integration tier: modules that run BasicSR's pipeline, subprocesses, DDP, the fuzz or the demo end to end.
# `make test-fast` runs everything else (unit tests of every sub-package, about a minute on 2 cores).
SLOW_MODULES = {
    'test_pipeline', 'test_exact_resume', 'test_distributed', 'test_option_fuzz', 'test_demo_end_to_end',
    'test_gcfsr_stages', 'test_x2', 'test_divergence_and_saves', 'test_standalone', 'test_study', 'test_compare',
}
SLOW_TESTS = {  # single slow tests (> ~3 s) in otherwise fast modules
    'test_compact_student_runs_three_stages_and_loads_without_the_plugin',
    'test_another_basicsr_generator_needs_only_its_family_entry',
    'test_evaluate_reports_lpips_and_fid_with_local_weights', 'test_profile_command_reports_costs_and_ratios',
    'test_latency_runners_time_pytorch_onnx_and_ncnn_or_say_why_not', 'test_generated_files_are_up_to_date_and_valid',
    'test_generated_option_blocks_are_in_step_with_their_source',
    'test_mixed_precision_trains_every_network_in_fp32_weights',
    'test_fp16_grad_scaler_state_is_saved_and_resumed', 'test_methods_run_through_the_pipeline',
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.module.__name__.rsplit('.', 1)[-1] in SLOW_MODULES or item.originalname in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
