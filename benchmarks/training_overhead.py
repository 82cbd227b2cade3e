"""Cost of one SDAKD iteration against its irreducible parts, measured side by side in one process.

    python benchmarks/training_overhead.py [--gt-size 128] [--batch 4] [--repeats 5]

Stage 3 at width 1/4 (teacher RRDBNet 64/23/32, D_T UNet 64, D_S UNet 16; random weights, random-weight VGG,
Real-ESRGAN synthesis on generated images). Parts: data synthesis; student G forward+backward; the teacher
forward (as the stage runs it: cut at the last tap); each discriminator's adversarial pass for G and its own
training step; the VGG perceptual loss. Overhead = full iteration / sum of parts - 1 (target <= 10 %).
Also: stage 1 without output
distillation against basicsr's own RealESRNetModel on the same data (target: within 5 %), and the peak
memory of a stage-3 iteration next to each part's (CUDA allocator peak, or CPU peak-RSS growth).
"""
import argparse
import copy
import os
import sys
import tempfile
from os import path as osp

import torch
import yaml

REPO = osp.abspath(osp.join(osp.dirname(__file__), osp.pardir))
sys.path.insert(0, REPO)
# the package's compat fixes must run before basicsr is imported
# isort: off
import sdakd_basicsr  # noqa: E402,F401
from basicsr.archs.discriminator_arch import UNetDiscriminatorSN  # noqa: E402
from basicsr.archs.rrdbnet_arch import RRDBNet  # noqa: E402
from basicsr.data import build_dataset  # noqa: E402
from basicsr.utils.registry import MODEL_REGISTRY  # noqa: E402
# isort: on
from common import discriminator_parts  # noqa: E402

from sdakd_basicsr.metrics.cost import interleaved_medians, peak_memory_mib  # noqa: E402
from sdakd_basicsr.metrics.reporting import markdown_table  # noqa: E402


def options(stage, root, gt_size, batch):
    with open(osp.join(REPO, 'options', f'sdakd_realesrgan_stage{stage}.yml')) as f:
        opt = yaml.safe_load(f)
    opt.update(num_gpu=0, gt_size=gt_size, queue_size=batch * 2, is_train=True, dist=False, rank=0, world_size=1,
               auto_resume=False, root_path=root)
    opt['network_g'].update(num_feat=16, num_grow_ch=8)
    if 'network_d' in opt:
        opt['network_d']['num_feat'] = 16
    opt['sdakd']['teacher_g']['path'] = osp.join(root, 'teacher.pth')
    opt['path'] = {'resume_state': None, 'models': osp.join(root, 'models')}
    if stage == 3:
        opt['path']['pretrain_network_d_teacher'] = osp.join(root, 'netD.pth')
    ds = opt['datasets']['train']
    ds.update(dataroot_gt=osp.join(root, 'gt'), crop_pad_size=gt_size, gt_size=gt_size, batch_size_per_gpu=batch,
              phase='train',
              scale=4)
    ds.pop('meta_info')
    opt['train']['perceptual_opt']['vgg_weights'] = 'random'
    return opt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--gt-size', type=int, default=128)
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--repeats', type=int, default=5)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix='sdakd_bench_')
    from sdakd_basicsr.data.demo_images import prepare_demo_data
    gt_dir = prepare_demo_data(osp.join(root, 'demo'))['train_gt']
    os.symlink(gt_dir, osp.join(root, 'gt'))
    torch.save({'params_ema': RRDBNet(3, 3, num_feat=64, num_block=23, num_grow_ch=32).state_dict()},
               osp.join(root, 'teacher.pth'))
    torch.save({'params': UNetDiscriminatorSN(3, 64).state_dict()}, osp.join(root, 'netD.pth'))
    os.makedirs(osp.join(root, 'models'))

    opt3 = options(3, root, args.gt_size, args.batch)
    dataset = build_dataset(copy.deepcopy(opt3['datasets']['train']))
    batch = {k: torch.stack([dataset[i][k] for i in range(args.batch)]) for k in ('gt', 'kernel1', 'kernel2',
                                                                                  'sinc_kernel')}
    model = MODEL_REGISTRY.get('SDAKDModel')(opt3)
    model.feed_data(batch)
    gt, lq = model.gt, model.lq

    def student():
        model.optimizer_g.zero_grad()
        torch.nn.functional.l1_loss(model.net_g(lq), gt).backward()

    def perceptual():
        out = model.net_g(lq).detach().requires_grad_(True)
        percep, _ = model.objective.perceptual(out, gt)
        percep.backward()

    model.output = model.net_g(lq).detach()
    part_fns = {'data synthesis': lambda: model.feed_data(batch),
                'student G forward+backward': student,
                'teacher forward (cut at last tap)':
                    lambda: model.teacher_side.forward(model.lq, None, None, need_output=False),
                'VGG perceptual loss forward+backward': perceptual}
    for tag, net in (('D_S', model.net_d), ('D_T', model.net_d_teacher)):
        part_fns[f'{tag} adversarial pass for G'], part_fns[f'{tag} training step'] = discriminator_parts(
            net, gt, lambda: model.output)
    # SDAKD's own compute and the optimiser bookkeeping every training loop has: listed apart, so the overhead
    # against the parts named in the target and the unexplained remainder can both be read off
    with torch.no_grad():
        model.teacher_side.student_taps.clear()
        model.net_g(lq)
        student_feats = [f.detach() for f in model.teacher_side.student_taps.collect()]
        model.teacher_side.forward(model.lq, None, None, need_output=False)
        teacher_feats = model.teacher_side.teacher_taps.collect()

    def feature_distillation():
        feats = [f.clone().requires_grad_(True) for f in student_feats]
        model.objective.fmd(model.net_adapters(feats), teacher_feats).backward()

    extra_fns = {'feature distillation (adapters + loss, fwd+bwd)': feature_distillation,
                 'optimizer steps (G + adapters, D_S, D_T)': lambda: [o.step() for o in model.optimizers],
                 'EMA update of G': lambda: model.model_ema(decay=model.ema_decay)}
    it = [0]

    def full():
        it[0] += 1
        model.feed_data(batch)
        model.optimize_parameters(it[0])

    student_forward = 'student forward only (subtracted from the VGG part)'
    medians = interleaved_medians({**part_fns, **extra_fns, student_forward: lambda: model.net_g(lq).detach(),
                                   'full': full}, args.repeats)
    parts = {name: medians[name] for name in part_fns}
    extras = {name: medians[name] for name in extra_fns}
    # the VGG perceptual term belongs to the recipe: time it without the student forward it contains
    parts['VGG perceptual loss forward+backward'] -= medians[student_forward]
    full_time = medians['full']
    total = sum(parts.values())
    # trim_heap: freed memory of earlier parts must not hide a part's needs
    memory = {name: peak_memory_mib(fn, model.device, trim_heap=True) for name, fn in part_fns.items()}
    full_memory = peak_memory_mib(full, model.device, trim_heap=True)
    rows = [[k, f'{v * 1e3:.0f} ms', f'{memory[k]:.0f} MiB'] for k, v in parts.items()]
    rows += [['sum of parts', f'{total * 1e3:.0f} ms', f'{sum(memory.values()):.0f} MiB'],
             ['largest part', '', f'{max(memory.values()):.0f} MiB'],
             ['full stage-3 iteration', f'{full_time * 1e3:.0f} ms', f'{full_memory:.0f} MiB'],
             ['overhead (target <= 10 %)', f'{100 * (full_time / total - 1):+.1f} %',
              f'{full_memory / max(memory.values()):.2f}x the largest part']]
    rows += [[k, f'{v * 1e3:.0f} ms', ''] for k, v in extras.items()]
    rest = full_time - total - sum(extras.values())
    rows += [['remainder (glue: hooks, logging, loss checks, zero_grad)', f'{rest * 1e3:.0f} ms',
              f'{100 * rest / full_time:+.1f} % of the iteration']]
    print(markdown_table(['part', 'median time', 'peak memory growth'], rows))
    mem_kind = 'CUDA allocator peak' if model.device.type == 'cuda' else 'peak RSS after malloc_trim, approximate'
    print(f'memory: {mem_kind}; the teacher runs under no_grad, so none of its activations are kept for backward')

    # stage 1 without output distillation vs basicsr's RealESRNetModel on the same data
    opt1 = options(1, root, args.gt_size, args.batch)
    sdakd1 = MODEL_REGISTRY.get('SDAKDModel')(copy.deepcopy(opt1))
    plain_opt = copy.deepcopy(opt1)
    plain_opt.update(model_type='RealESRNetModel', gt_usm=True)  # basicsr's key: sharpen the GT for L1
    plain = MODEL_REGISTRY.get('RealESRNetModel_basicsr')(plain_opt)

    def step(m):
        def run():
            m.feed_data(batch)
            m.optimize_parameters(1)
        return run
    stage1 = interleaved_medians({'sdakd': step(sdakd1), 'plain': step(plain)}, args.repeats)
    t_sdakd, t_plain = stage1['sdakd'], stage1['plain']
    print(markdown_table(['stage 1 (no kd)', 'median'], [
        ['SDAKDModel', f'{t_sdakd * 1e3:.0f} ms'], ["basicsr's RealESRNetModel", f'{t_plain * 1e3:.0f} ms'],
        ['ratio (target within 5 %)', f'{100 * (t_sdakd / t_plain - 1):+.1f} %']]))
    print(f'\nCPU threads {torch.get_num_threads()}, gt {args.gt_size}, batch {args.batch}, median of {args.repeats}; '
          f'command: python benchmarks/training_overhead.py {" ".join(sys.argv[1:])}')


if __name__ == '__main__':
    main()
