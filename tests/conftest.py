import pytest
import torch

import sdakd_basicsr  # noqa: F401  (compat + registration before anything imports basicsr)

torch.set_num_threads(2)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh root (the user's CWD): tiny teacher checkpoints, tiny data, the shipped options/ folder."""
    from tests.helpers import make_root
    make_root(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


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
