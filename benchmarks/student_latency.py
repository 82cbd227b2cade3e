"""Every student family's speed-up over the teacher, and its share of the MAC ratio, in PyTorch, ONNX Runtime and
the ncnn engine, measured side by side in one run.

    python benchmarks/student_latency.py [--size 64] [--threads 1] [--repeats 5] [--students all]

Target (issue 19): a compact student reaches >= 80 % of its MAC ratio in its best runtime. Random weights (speed
does not depend on them). PyTorch and ONNX Runtime networks are timed round-robin in this process
(``interleaved_medians``); the ncnn engine runs in a child process pinned to ``--threads`` CPUs, one network after
the other. Run it alone: on 2 cores any other busy process distorts every number.
"""
import argparse
import sys
from os import path as osp
from typing import Dict

import torch

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), osp.pardir)))
# the package's compat fixes must run before basicsr is imported
# isort: off
import sdakd_basicsr  # noqa: E402,F401
# isort: on
from sdakd_basicsr.archs.generator_call import REALESRGAN_X4PLUS, build_generator  # noqa: E402
from sdakd_basicsr.deploy.latency import ncnn_latency, onnx_runner, pytorch_runner, scratch_folder  # noqa: E402
from sdakd_basicsr.metrics.cost import count_macs, count_params, interleaved_medians  # noqa: E402
from sdakd_basicsr.metrics.reporting import markdown_table  # noqa: E402

# the students of the front (docs/results.md): name -> network_g
STUDENTS: Dict[str, dict] = {
    'RRDBNet 1/2': dict(REALESRGAN_X4PLUS, num_feat=32, num_grow_ch=16),
    'RRDBNet 1/4': dict(REALESRGAN_X4PLUS, num_feat=16, num_grow_ch=8),
    'RRDBNet 1/8': dict(REALESRGAN_X4PLUS, num_feat=8, num_grow_ch=4),
    'RRDBNet 32/6': dict(REALESRGAN_X4PLUS, num_feat=32, num_block=6, num_grow_ch=16),
    'SRVGGNetCompact 64x32': dict(type='SRVGGNetCompact', num_feat=64, num_conv=32, upscale=4, act_type='prelu'),
    'SRVGGNetCompact 64x16': dict(type='SRVGGNetCompact', num_feat=64, num_conv=16, upscale=4, act_type='prelu'),
    'SRVGGNetCompact 32x16': dict(type='SRVGGNetCompact', num_feat=32, num_conv=16, upscale=4, act_type='prelu'),
}
RUNTIMES = ('PyTorch', 'ONNX Runtime', 'ncnn')


def measure(specs: Dict[str, dict], size: int, threads: int, repeats: int) -> Dict[str, dict]:
    """{name: {params, macs, PyTorch: s, ONNX Runtime: s, ncnn: s (or None), notes}} for the teacher and ``specs``."""
    torch.set_num_threads(threads)
    x = torch.rand(1, 3, size, size)
    nets = {'teacher (x4plus)': (REALESRGAN_X4PLUS, build_generator(REALESRGAN_X4PLUS).eval())}
    nets.update({name: (spec, build_generator(spec).eval()) for name, spec in specs.items()})
    results = {name: dict(params=count_params(net), macs=count_macs(net, x), notes=[]) for name, (_, net) in
               nets.items()}
    with scratch_folder() as folder:
        runners = {}
        for name, (spec, net) in nets.items():
            runners[name, 'PyTorch'] = pytorch_runner(net, x)
            run, why = onnx_runner(net, x, threads, folder)
            if run is None:
                results[name]['notes'].append(f'ONNX Runtime: {why}')
            else:
                runners[name, 'ONNX Runtime'] = run
        print(f'timing {len(runners)} PyTorch / ONNX Runtime runs round-robin ...', flush=True)
        for key, seconds in interleaved_medians(runners, repeats).items():
            results[key[0]][key[1]] = seconds
        for name, (spec, net) in nets.items():
            print(f'timing {name} in the ncnn engine ...', flush=True)
            seconds, why = ncnn_latency(net, spec, size, threads, repeats, folder)
            results[name]['ncnn'] = seconds
            if seconds is None:
                results[name]['notes'].append(f'ncnn: {why}')
    return results


def table(results: Dict[str, dict]) -> str:
    teacher = results['teacher (x4plus)']
    rows = []
    for name, r in results.items():
        mac_ratio = teacher['macs'] / r['macs']
        cells, shares = [], {}
        for runtime in RUNTIMES:
            seconds = r.get(runtime)
            if seconds is None or teacher.get(runtime) is None:
                cells.append('-')
                continue
            speedup = teacher[runtime] / seconds
            shares[runtime] = speedup / mac_ratio
            cells.append(f'{seconds * 1e3:.0f} ms, {speedup:.1f}x ({100 * shares[runtime]:.0f} %)')
        best = max(shares, key=shares.get) if shares and name != 'teacher (x4plus)' else None
        rows.append([name, f'{r["params"] / 1e6:.2f} M', f'{mac_ratio:.1f}x', *cells,
                     f'{100 * shares[best]:.0f} % ({best})' if best else '-'])
    return markdown_table(['network', 'params', 'MAC ratio', *[f'{rt}: latency, speed-up (share)' for rt in RUNTIMES],
                           'best share of MAC ratio'], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--size', type=int, default=64, help='LR input side (default 64)')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--students', default='all', help=f'comma-separated names from: {", ".join(STUDENTS)}')
    args = parser.parse_args()
    names = list(STUDENTS) if args.students == 'all' else [n.strip() for n in args.students.split(',')]
    unknown = [n for n in names if n not in STUDENTS]
    if unknown:
        parser.error(f'unknown students {unknown}; choose from {list(STUDENTS)}')
    results = measure({n: STUDENTS[n] for n in names}, args.size, args.threads, args.repeats)
    print(table(results))
    compact = [n for n in names if n.startswith('SRVGGNetCompact')]
    if compact:
        teacher = results['teacher (x4plus)']
        best = max((teacher[rt] / results[n][rt]) / (teacher['macs'] / results[n]['macs'])
                   for n in compact for rt in RUNTIMES if results[n].get(rt) and teacher.get(rt))
        print(f'\ntarget: a compact student reaches >= 80 % of its MAC ratio in its best runtime: '
              f'{100 * best:.0f} % -> {"met" if best >= 0.8 else "NOT met"}')
    for name, r in results.items():
        for note in r['notes']:
            print(f'note: {name}: {note}')
    print(f'\n{args.size}x{args.size} LR, {args.threads} thread(s), median of {args.repeats}; command: '
          f'python benchmarks/student_latency.py {" ".join(sys.argv[1:])}')


if __name__ == '__main__':
    main()
