"""Speed-up of the teacher cache at the study's settings, measured side by side in one process.

    python benchmarks/teacher_cache.py [--repeats 5] [--threads 1]

Stages 2 and 3 of the study's `sdakd` arm (width-1/4 student, real x4plus teacher architecture, 64x64 GT
crops, batch 4, D_T UNet 64, D_S UNet 16): one training iteration (`optimize_parameters`) on the same batch
with the online teacher and with the teacher cache, timed round-robin (medians). Also the teacher's forward
pass alone. Needs the demo data and teacher (made by `make demo`, or made here).
"""
import tempfile
from os import path as osp

import torch

# isort: off
# first: the repository on the path, and as the CWD
from common import model_options, parse_timing_args, timing_parser  # noqa: I100
import sdakd_basicsr  # noqa: E402,F401
from basicsr.data import build_dataset  # noqa: E402
from basicsr.utils.registry import MODEL_REGISTRY  # noqa: E402
# isort: on
from sdakd_basicsr.distill.teacher_cache_builder import build_from_options  # noqa: E402
from sdakd_basicsr.metrics.cost import interleaved_medians  # noqa: E402
from sdakd_basicsr.metrics.reporting import markdown_table  # noqa: E402
from sdakd_basicsr.recipes import demo  # noqa: E402
from sdakd_basicsr.recipes import study as st  # noqa: E402


def main() -> None:
    parser = timing_parser(__doc__)
    args = parse_timing_args(parser)
    demo.convert_teacher()
    demo.prepare_data()
    runs = {r.name: r for r in st.plan(demo.load_stages(), ['sdakd'], [0], {0: 1, 1: 1, 2: 1, 3: 1})}
    if not osp.isfile(st.CACHE_FILE):
        build_from_options(runs['study_stage1'].opt, log=print)
    root = tempfile.mkdtemp(prefix='sdakd_cache_bench_')
    rows, times = [], {}
    fns = {}
    models = {}
    for stage, name in ((2, 'study_s0_stage2_ds'), (3, 'study_s0_stage3_sdakd')):
        opt = model_options(runs[name].opt, root)
        ds_opt = dict(opt['datasets']['train'], phase='train', scale=4)
        dataset = build_dataset(ds_opt)
        items = [dataset[i] for i in range(ds_opt['batch_size_per_gpu'])]
        cached = {'lq': torch.stack([it['lq'] for it in items]), 'gt': torch.stack([it['gt'] for it in items]),
                  'teacher_out': torch.stack([it['teacher_out'] for it in items]),
                  'teacher_feats': [torch.stack(f) for f in zip(*[it['teacher_feats'] for it in items])]}
        online = {k: cached[k] for k in ('lq', 'gt')}
        torch.manual_seed(0)
        model = MODEL_REGISTRY.get('SDAKDModel')(opt)
        models[stage] = model

        def iteration(batch, model=model):
            def run():
                model.feed_data(batch)
                model.optimize_parameters(2)
            return run

        fns[f'stage {stage}, online teacher'] = iteration(online)
        fns[f'stage {stage}, teacher cache'] = iteration(cached)
        fns[f'stage {stage}, teacher forward alone'] = (
            lambda model=model, lq=online['lq']: model.teacher_side.forward(lq, None, None, True))
    times = interleaved_medians(fns, args.repeats)
    for stage in (2, 3):
        on, off = times[f'stage {stage}, online teacher'], times[f'stage {stage}, teacher cache']
        rows.append([f'stage {stage}', f'{on * 1e3:.0f} ms', f'{off * 1e3:.0f} ms', f'{on / off:.2f}x',
                     f'{times[f"stage {stage}, teacher forward alone"] * 1e3:.0f} ms'])
    print(f'study settings: gt {st.STUDY_GT_SIZE}, batch {st.STUDY_BATCH}, width 1/4; CPU threads {args.threads}; '
          f'medians of {args.repeats} round-robin rounds')
    print(markdown_table(['iteration', 'online teacher', 'teacher cache', 'speed-up', 'teacher forward alone'],
                         rows))


if __name__ == '__main__':
    main()
