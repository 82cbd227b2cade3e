"""Where a compact stage-3 iteration goes, and what the cheaper-adversary options save, side by side in one process.

    python benchmarks/adversarial_cost.py [--repeats 5] [--threads 2]

The demo's compact stage-3 file on its cached data (SRVGGNetCompact 64x16 student, D_S UNet 12, D_T UNet 64,
adapters + FMD, batch 4, 128x128 GT crops): first the parts of one iteration (the student's forward+backward, each
discriminator's adversarial pass for G and its own step, feature distillation, the texture terms), then whole
iterations under ``train.d_crop_size`` / ``train.d_update_every`` (and both), as ratios to the default iteration.
An iteration with ``d_update_every: 2`` is timed as the mean of an iteration with and one without the D steps.
Needs the demo's data, teacher and cache (made by ``make demo``, or made here).
"""
import copy
import random
import tempfile

import torch

# isort: off
# first: the repository on the path, and as the CWD
from common import discriminator_parts, model_options, parse_timing_args, timing_parser  # noqa: I100
import sdakd_basicsr  # noqa: E402,F401
from basicsr.data import build_dataset  # noqa: E402
from basicsr.utils.registry import MODEL_REGISTRY  # noqa: E402
from torch.utils.data import default_collate  # noqa: E402
# isort: on
from sdakd_basicsr.metrics.cost import interleaved_medians  # noqa: E402
from sdakd_basicsr.metrics.reporting import markdown_table  # noqa: E402
from sdakd_basicsr.recipes import anchors, demo  # noqa: E402

VARIANTS = {
    'default (whole images, D steps every iteration)': {},
    'd_crop_size 64': {'d_crop_size': 64},
    'd_update_every 2': {'d_update_every': 2},
    'd_crop_size 64 + d_update_every 2 (the anchors study)': dict(anchors.CHEAP_ADVERSARY),
    'the same + texture terms (hf, patch)': dict(anchors.CHEAP_ADVERSARY, **copy.deepcopy(anchors.TEXTURE)),
}


def build(stage3: dict, root: str, train_extra: dict):
    opt = model_options(stage3, root)
    opt['train'].update(copy.deepcopy(train_extra))
    torch.manual_seed(0)
    return MODEL_REGISTRY.get('SDAKDModel')(opt)


def main() -> None:
    parser = timing_parser(__doc__)
    args = parse_timing_args(parser)
    overrides = demo.precision_overrides()
    demo.convert_teacher()
    demo.prepare_data()
    demo.ensure_teacher_cache(demo.demo_student().options_dir, overrides)
    stage3 = demo.load_stages(demo.demo_student().options_dir, overrides)[3]
    for key in list(stage3['path']):
        if key.startswith('pretrain_network') and key != 'pretrain_network_g':
            stage3['path'][key] = None
    stage3['path']['pretrain_network_g'] = None
    root = tempfile.mkdtemp(prefix='sdakd_adv_bench_')
    ds_opt = dict(stage3['datasets']['train'], phase='train', scale=4)
    dataset = build_dataset(ds_opt)
    random.seed(0)
    batch = default_collate([dataset[random.randrange(len(dataset))] for _ in range(ds_opt['batch_size_per_gpu'])])

    models = {name: build(stage3, root, extra) for name, extra in VARIANTS.items()}
    base = models[next(iter(VARIANTS))]
    base.feed_data(batch)
    base.optimize_parameters(1)
    gt, lq, out = base.gt, base.lq, base.output.detach()

    def student():
        base.optimizer_g.zero_grad()
        torch.nn.functional.l1_loss(base.net_g(lq), gt).backward()

    texture_model = models['the same + texture terms (hf, patch)']

    def texture_terms():
        x = out.clone().requires_grad_(True)
        teacher = batch['teacher_out']
        sum(loss(x, teacher) for name, (loss, _) in texture_model.objective.texture.items()).backward()

    parts = {'student G forward+backward': student,
             'texture terms (hf + patch) forward+backward': texture_terms}
    for tag, net in (('D_S', base.net_d), ('D_T', base.net_d_teacher)):
        parts[f'{tag} adversarial pass for G'], parts[f'{tag} training step'] = discriminator_parts(
            net, gt, lambda: out)
    counter = {name: 0 for name in VARIANTS}

    def iteration(name):
        model = models[name]

        def run():  # two iterations: with d_update_every 2, one of them steps the discriminators
            for _ in range(2):
                counter[name] += 1
                model.feed_data(batch)
                model.optimize_parameters(counter[name])
        return run

    for name in VARIANTS:  # warm-up
        iteration(name)()
    times = interleaved_medians({**parts, **{name: iteration(name) for name in VARIANTS}}, args.repeats)
    full = times[next(iter(VARIANTS))] / 2
    rows = [[name, f'{times[name] * 1e3:.0f} ms', f'{times[name] / full:.0%}'] for name in parts]
    print(f'demo compact stage 3, batch {ds_opt["batch_size_per_gpu"]} x {ds_opt["gt_size"]}x{ds_opt["gt_size"]} GT, '
          f'CPU threads {args.threads}; medians of {args.repeats} round-robin rounds')
    print(markdown_table(['part', 'median time', 'share of a default iteration'], rows))
    rows = [[name, f'{times[name] / 2:.2f} s', f'{full / (times[name] / 2):.2f}x'] for name in VARIANTS]
    print(markdown_table(['stage-3 iteration', 's/it', 'speed-up over the default'], rows))


if __name__ == '__main__':
    main()
