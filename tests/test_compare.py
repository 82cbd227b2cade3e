"""The comparison harness's plan: shared stages, equal budgets, per-seed names (its runs are not repeated
here: they need the real teacher; see README for a measured run)."""
from sdakd_basicsr.tools.compare import final_checkpoint, plan

BUDGET = {0: 10, 1: 60, 2: 20, 3: 20}


def test_plan_shares_sdakd_stages_and_keeps_budgets_equal(monkeypatch):
    from tests.helpers import REPO
    monkeypatch.chdir(REPO)
    runs = plan(['sdakd', 'no_stage1', 'scratch', 'student_d_only'], 0, BUDGET)
    names = [(m, s) for m, s, _, _ in runs]
    assert names[0] == ('stage0', 0) and names[1:4] == [('sdakd', 1), ('sdakd', 2), ('sdakd', 3)]
    totals = {}
    for method, stage, opt, n in runs:
        totals.setdefault(method, 0)
        totals[method] += n
        assert opt['name'].startswith('cmp_s0_') and opt['train']['total_iter'] is not None
    # a method's own stages plus the SDAKD stages it shares add up to the same budget (stage 0 aside)
    assert totals['no_stage1'] == 100 and totals['scratch'] == 100  # both drop a stage, gain its iterations
    assert totals['student_d_only'] == 20  # stages 1-2 shared with SDAKD (80) + its own stage 3
    sd3 = [o for m, s, o, _ in runs if (m, s) == ('student_d_only', 3)][0]
    assert sd3['path']['pretrain_network_g'] == 'experiments/cmp_s0_sdakd_demo_stage2/models/net_g_latest.pth'
    assert final_checkpoint('student_d_only', 1) == \
        'experiments/cmp_s1_sdakd_demo_stage3_student_d_only/models/net_g_latest.pth'


def test_plan_without_teacher_discriminator_skips_stage0(monkeypatch):
    from tests.helpers import REPO
    monkeypatch.chdir(REPO)
    runs = plan(['scratch'], 2, BUDGET)
    assert [(m, s) for m, s, _, _ in runs] == [('scratch', 1), ('scratch', 2)]
    assert [o['manual_seed'] for _, _, o, _ in runs] == [21, 22]
