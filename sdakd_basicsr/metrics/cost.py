"""Cost of networks: parameters, multiply-accumulates, latency, peak memory; round-robin timing."""
import ctypes
import gc
import statistics
import time
from typing import Callable, Dict, List

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from ..archs.generator_call import bare_model


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in bare_model(net).parameters())


def count_macs(net: nn.Module, *inputs, **kwargs) -> int:
    """Multiply-accumulates of one forward pass (torch's FLOP counter / 2: every convolution and matrix
    product, functional ones included, e.g. GCFSR's modulated convs). Works on the meta device."""
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
            gc.collect()
            ctypes.CDLL('libc.so.6').malloc_trim(0)
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')  # resets VmHWM to the current RSS
        base = _status_kib('VmRSS')
        fn()
        return (_status_kib('VmHWM') - base) / 1024
    except OSError:
        import resource  # lazy: Unix only
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        fn()
        return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
