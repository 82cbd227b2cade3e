"""Cost of the teacher and the student (and optionally the discriminators) of an SDAKD option file.

    python -m sdakd_basicsr.tools.profile -opt options/sdakd_realesrgan_stage3.yml --size 256 --repeats 10
    python -m sdakd_basicsr.tools.profile -opt options/sdakd_gcfsr_stage3.yml --device cuda --discriminators

Parameters; MACs (counted by torch's FLOP counter over every convolution and matrix product, at the stated
input); latency (warm-up runs first, CUDA synchronised, the median of --repeats, threads stated); peak memory
of one forward pass (CUDA: max_memory_allocated; CPU: growth of the peak RSS of a fresh process over one
forward pass); and the teacher/student ratios. Weights are random: cost does not depend on them.
"""
import argparse
import multiprocessing
import sys
from typing import Dict, List, Optional

import torch
from torch import nn

from basicsr.archs import build_network

import sdakd_basicsr  # noqa: F401  (registration)
from sdakd_basicsr.archs.generator_call import family_of
from sdakd_basicsr.distill.option_file import read_option_file
from sdakd_basicsr.metrics.cost import count_macs, count_params, peak_memory_mib, profile_latency
from sdakd_basicsr.metrics.reporting import markdown_table


def _inputs(net: nn.Module, spec: dict, size: int, device) -> tuple:
    """(args, kwargs) of one forward pass, as the generator family wants it (a face generator takes its fixed
    out_size, a condition and noise); discriminators and other networks take one image of ``size``."""
    family = family_of(spec)
    x, cond = family.probe_inputs(spec, device, size)
    args = (x, ) if cond is None else (x, cond)
    return args, ({'noise': family.make_noise(net, 1, device)} if family.uses_noise else {})


def _cpu_peak_in_fresh_process(spec: dict, side: int, threads: int) -> float:
    """Runs in a spawned process: growth of peak RSS (MiB) over one forward pass, after the build."""
    torch.set_num_threads(threads)
    net = build_network(spec).eval()
    args, kwargs = _inputs(net, spec, side, torch.device('cpu'))
    return peak_memory_mib(lambda: _forward(net, args, kwargs), 'cpu')


def _forward(net: nn.Module, args, kwargs) -> None:
    with torch.no_grad():
        net(*args, **kwargs)


def _peak_memory(net: nn.Module, args, kwargs, device, spec: dict, side: int) -> float:
    """MiB of peak memory during one forward pass (CUDA: allocator peak; CPU: RSS in a fresh process)."""
    if device.type == 'cuda':
        return peak_memory_mib(lambda: _forward(net, args, kwargs), device)
    with multiprocessing.get_context('spawn').Pool(1) as pool:
        return pool.apply(_cpu_peak_in_fresh_process, (spec, side, torch.get_num_threads()))


def networks_of(opt: dict, discriminators: bool) -> Dict[str, dict]:
    nets = {}
    teacher = (opt.get('sdakd') or {}).get('teacher_g') or {}
    if teacher.get('network'):
        nets['teacher G'] = teacher['network']
    nets['student G'] = opt['network_g']
    if discriminators:
        for key, label in (('network_d_teacher', 'teacher D'), ('network_d', 'student D')):
            if opt.get(key):
                nets[label] = opt[key]
    return nets


def profile(opt: dict, size: int = 64, d_size: int = 256, repeats: int = 10, device: str = 'cpu',
            discriminators: bool = False, latency: bool = True, memory: bool = True) -> str:
    dev = torch.device(device)
    rows = []
    measured = {}
    specs = networks_of(opt, discriminators)
    for label in specs:
        spec = specs[label]
        net = build_network(spec).to(dev).eval()
        side = d_size if label.endswith('D') else size
        args, kwargs = _inputs(net, spec, side, dev)
        m = dict(params=count_params(net), macs=count_macs(net, *args, **kwargs),
                 memory=_peak_memory(net, args, kwargs, dev, spec, side) if memory else float('nan'),
                 latency=profile_latency(_Call(net, kwargs), args[0] if len(args) == 1 else args, repeats)
                 if latency else float('nan'),
                 input='x'.join(str(d) for d in args[0].shape[2:]))
        measured[label] = m
        del net
    for label in specs:
        m = measured[label]
        rows.append([label, specs[label]['type'], m['input'], f'{m["params"] / 1e6:.2f} M', f'{m["macs"] / 1e9:.2f} G',
                     f'{m["latency"] * 1e3:.1f} ms' if latency else 'n/a',
                     f'{m["memory"]:.0f} MiB' if memory else 'n/a'])
    for a, b in (('teacher G', 'student G'), ('teacher D', 'student D')):
        if a in measured and b in measured:
            ta, tb = measured[a], measured[b]
            rows.append([f'{a} / {b}', '', '', f'{ta["params"] / tb["params"]:.1f}x', f'{ta["macs"] / tb["macs"]:.1f}x',
                         f'{ta["latency"] / tb["latency"]:.1f}x' if latency else 'n/a',
                         f'{ta["memory"] / max(tb["memory"], 1e-9):.1f}x' if memory else 'n/a'])
    threads = torch.get_num_threads() if dev.type == 'cpu' else 'n/a'
    header = ['network', 'type', 'input', 'params', 'MACs', f'latency ({dev.type}, median of {repeats})', 'peak memory']
    return (markdown_table(header, rows) + f'\n\ndevice: {dev} (CPU threads: {threads}); '
            f'torch {torch.__version__}; command: python -m sdakd_basicsr.tools.profile {" ".join(sys.argv[1:])}')


class _Call(nn.Module):
    """Binds keyword arguments (GCFSR's noise) and unpacks tuple inputs for profile_latency."""

    def __init__(self, net: nn.Module, kwargs: dict) -> None:
        super().__init__()
        self.net, self.kwargs = net, kwargs

    def forward(self, x):
        return self.net(*x, **self.kwargs) if isinstance(x, tuple) else self.net(x, **self.kwargs)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-opt', required=True, help='an SDAKD option file (network_g, sdakd.teacher_g, network_d*)')
    parser.add_argument('--size', type=int, default=64, help='LR input side for RRDBNet generators (default 64)')
    parser.add_argument('--d-size', type=int, default=256, help='input side for discriminators (default 256)')
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--threads', type=int, default=None, help='CPU threads (default: torch default)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--discriminators', action='store_true', help='also profile D_T and D_S')
    parser.add_argument('--no-latency', action='store_true', help='skip the latency measurement')
    parser.add_argument('--no-memory', action='store_true', help='skip the peak-memory measurement')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    opt = read_option_file(args.opt)
    print(profile(opt, args.size, args.d_size, args.repeats, args.device, args.discriminators, not args.no_latency,
                  not args.no_memory))


if __name__ == '__main__':
    main()
