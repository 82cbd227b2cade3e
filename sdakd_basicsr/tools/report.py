"""Evaluation and profiling helpers shared by the demo report (and reusable on their own).

* ``evaluate``: PSNR/SSIM against GT, PSNR against the teacher's output, NIQE, per image and averaged;
* ``count_macs`` / ``profile_latency``: multiply-accumulates of every conv/linear layer for a given input,
  median CPU/GPU latency with warm-up and synchronisation;
* ``parse_train_log``: the loss/logit series of a BasicSR training log, for plots.
"""
import re
import statistics
import time
from collections import defaultdict
from typing import Callable, Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch
from torch import Tensor, nn

from basicsr.metrics import calculate_niqe, calculate_psnr, calculate_ssim

Generator = Callable[[Tensor], Tensor]  # LR (1x3xhxw, RGB [0, 1]) -> SR


def read_rgb(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(path)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def to_tensor(rgb: np.ndarray, device='cpu') -> Tensor:
    return torch.from_numpy(rgb.astype(np.float32) / 255.).permute(2, 0, 1)[None].to(device)


def to_image(t: Tensor) -> np.ndarray:
    """1x3xHxW RGB [0, 1] -> HxWx3 uint8 RGB."""
    return (t[0].detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)


def bicubic_lr(rgb: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB-style bicubic downscaling by ``scale`` of an HxWx3 uint8 image, rounded back to uint8."""
    from basicsr.utils.matlab_functions import imresize
    return np.clip(np.round(imresize(rgb.astype(np.float32) / 255., 1 / scale) * 255), 0, 255).astype(np.uint8)


TEACHER_RRDBNET = dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, num_grow_ch=32)  # x4plus


def load_rrdbnet(path: str, spec: dict, device='cpu') -> nn.Module:
    """An RRDBNet (``spec``: constructor arguments, a ``type`` key is ignored) from a checkpoint holding
    ``params_ema``, ``params`` or a raw state dict; strict, in eval mode."""
    from basicsr.archs.rrdbnet_arch import RRDBNet
    import os.path as osp
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    state = torch.load(path, map_location='cpu')
    key = 'params_ema' if 'params_ema' in state else ('params' if 'params' in state else None)
    net = RRDBNet(**{k: v for k, v in spec.items() if k != 'type'})
    net.load_state_dict(state[key] if key else state, strict=True)
    return net.to(device).eval()


def read_pairs(gt_dir: str, lr_dir: str) -> List[tuple]:
    """[(name, lr_rgb, gt_rgb)] for every PNG of ``gt_dir`` with its namesake in ``lr_dir``."""
    import glob
    import os.path as osp
    pairs = []
    for gt_path in sorted(glob.glob(osp.join(gt_dir, '*.png'))):
        name = osp.basename(gt_path)
        pairs.append((name, read_rgb(osp.join(lr_dir, name)), read_rgb(gt_path)))
    return pairs


def bicubic(scale: int = 4) -> Generator:
    return lambda x: nn.functional.interpolate(x, scale_factor=scale, mode='bicubic', align_corners=False)


def network(net: nn.Module) -> Generator:
    net.eval()

    def run(x: Tensor) -> Tensor:
        with torch.no_grad():
            return net(x.to(next(net.parameters()).device))
    return run


def _bgr(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., ::-1].copy()


def evaluate(generators: Dict[str, Generator], pairs: Sequence[tuple], teacher: str = 'teacher',
             crop_border: int = 4, log: Callable[[str], None] = print) -> Dict[str, Dict[str, float]]:
    """Mean metrics per generator over ``pairs`` of (name, lr_rgb, gt_rgb): PSNR/SSIM on RGB and on Y,
    ``psnr_teacher``, NIQE; ``results['_outputs']`` holds the images.

    ``psnr_teacher`` compares with the output of the generator named ``teacher``; NIQE is skipped (NaN) on
    images too small for it, with a message.
    """
    outputs: Dict[str, Dict[str, np.ndarray]] = defaultdict(dict)
    for img_name, lr, _ in pairs:
        x = to_tensor(lr)
        for name, gen in generators.items():
            outputs[name][img_name] = to_image(gen(x))
    results = {}
    for name in generators:
        rows, niqe_skipped = defaultdict(list), []
        for img_name, _, gt in pairs:
            sr = outputs[name][img_name]
            rows['psnr'].append(calculate_psnr(sr, gt, crop_border))
            rows['ssim'].append(calculate_ssim(_bgr(sr), _bgr(gt), crop_border))
            rows['psnr_y'].append(calculate_psnr(_bgr(sr), _bgr(gt), crop_border, test_y_channel=True))
            rows['ssim_y'].append(calculate_ssim(_bgr(sr), _bgr(gt), crop_border, test_y_channel=True))
            if teacher in outputs:
                rows['psnr_teacher'].append(
                    float('inf') if name == teacher else calculate_psnr(sr, outputs[teacher][img_name], crop_border))
            try:
                rows['niqe'].append(float(calculate_niqe(_bgr(sr), crop_border)))
            except Exception as err:  # NIQE needs several 96x96 blocks after cropping
                niqe_skipped.append(f'{img_name} ({sr.shape[0]}x{sr.shape[1]}: {str(err).splitlines()[0][:60]})')
        if niqe_skipped:
            log(f'NIQE skipped for {name} on {len(niqe_skipped)} of {len(pairs)} images (too small for its 96x96 '
                f'blocks after the {crop_border}-pixel crop): ' + ', '.join(niqe_skipped[:3])
                + (' ...' if len(niqe_skipped) > 3 else ''))
        results[name] = {k: (float(np.mean(v)) if v else float('nan')) for k, v in rows.items()}
    results['_outputs'] = outputs
    return results


def count_macs(net: nn.Module, *inputs, **kwargs) -> int:
    """Multiply-accumulates of one forward pass (torch's FLOP counter / 2: every convolution and matrix
    product, functional ones included, e.g. GCFSR's modulated convs). Works on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        with torch.no_grad():
            net(*inputs, **kwargs)
    return counter.get_total_flops() // 2


def interleaved_medians(fns: Dict[str, Callable[[], object]], rounds: int, warmup: int = 1) -> Dict[str, float]:
    """Median seconds per call of each function, measured round-robin (one call of each per round), so that a
    slow phase of a shared machine hits every item alike instead of biasing their ratios."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def profile_latency(net: nn.Module, x: Tensor, repeats: int = 5, warmup: int = 1) -> float:
    """Median seconds per forward pass (after warm-up; CUDA synchronised)."""
    net.eval()

    def sync() -> None:
        if x.is_cuda:
            torch.cuda.synchronize()

    times: List[float] = []
    with torch.no_grad():
        for i in range(warmup + repeats):
            sync()
            start = time.perf_counter()
            net(x)
            sync()
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


def _status_kib(field: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise OSError(f'{field} not in /proc/self/status')


def peak_memory_mib(fn: Callable[[], object], device, trim_heap: bool = False) -> float:
    """Peak memory growth (MiB) while ``fn()`` runs. CUDA: the allocator's peak over what was allocated before.
    CPU: the peak-RSS growth (Linux: the mark is reset first, so earlier work does not hide this call; with
    ``trim_heap`` freed heap is returned to the OS first, so that reusing it does not hide the call's needs;
    elsewhere ru_maxrss, which only shows growth beyond the process's earlier peak)."""
    device = torch.device(device)
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    try:
        if trim_heap:
            import ctypes
            import gc
            gc.collect()
            ctypes.CDLL('libc.so.6').malloc_trim(0)
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')  # resets VmHWM to the current RSS
        base = _status_kib('VmRSS')
        fn()
        return (_status_kib('VmHWM') - base) / 1024
    except OSError:
        import resource
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        fn()
        return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024


_ITER_LINE = re.compile(r'iter:\s*([\d,]+).*?\]\s*\[eta[^\]]*\]\s*(.*)$')
_VALUE = re.compile(r'(\w+): ([-+0-9.eEnaif]+)')


def parse_train_log(path: str) -> Dict[str, List[tuple]]:
    """{term: [(iteration, value), ...]} from BasicSR's training log lines."""
    series: Dict[str, List[tuple]] = defaultdict(list)
    with open(path, encoding='utf-8', errors='replace') as f:
        for line in f:
            match = _ITER_LINE.search(line)
            if not match:
                continue
            it = int(match.group(1).replace(',', ''))
            for name, value in _VALUE.findall(match.group(2)):
                try:
                    series[name].append((it, float(value)))
                except ValueError:
                    continue
    return dict(series)


def plot_curves(series: Dict[str, List[tuple]], title: str, path: str) -> None:
    """Loss terms, discriminator losses and discriminator logits of one stage, in three panels."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    groups = [('generator terms', lambda k: k.startswith('l_g_')),
              ('discriminator losses', lambda k: k.startswith('l_d')),
              ('discriminator mean logits', lambda k: k.startswith('out_'))]
    groups = [(t, [k for k in sorted(series) if pick(k)]) for t, pick in groups]
    groups = [(t, keys) for t, keys in groups if keys]
    fig, axes = plt.subplots(1, max(1, len(groups)), figsize=(5 * max(1, len(groups)), 3.6), squeeze=False)
    for ax, (panel, keys) in zip(axes[0], groups):
        for key in keys:
            its, values = zip(*series[key])
            ax.plot(its, values, label=key)
        ax.set_title(panel)
        ax.set_xlabel('iteration')
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def comparison_grid(panels: Sequence[tuple], path: str, label_height: int = 22) -> None:
    """Side-by-side crops with a label above each: ``panels`` = [(label, rgb uint8), ...] (same size)."""
    h, w = panels[0][1].shape[:2]
    tiles = []
    for label, img in panels:
        canvas = np.full((h + label_height, w, 3), 255, np.uint8)
        canvas[label_height:] = img
        cv2.putText(canvas, label, (4, label_height - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(canvas)
        tiles.append(np.full((h + label_height, 4, 3), 255, np.uint8))
    cv2.imwrite(path, cv2.cvtColor(np.concatenate(tiles[:-1], axis=1), cv2.COLOR_RGB2BGR))


def markdown_table(header: Sequence[str], rows: Sequence[Sequence], fmt: Optional[Dict[int, str]] = None) -> str:
    def cell(i, v):
        if isinstance(v, float):
            return 'n/a' if v != v else ('-' if v == float('inf') else format(v, (fmt or {}).get(i, '.2f')))
        return str(v)
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(cell(i, v) for i, v in enumerate(row)) + ' |' for row in rows]
    return '\n'.join(lines)
