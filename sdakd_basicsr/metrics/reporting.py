"""Reporting helpers: markdown tables, BasicSR training-log series and their plots."""
import re
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

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
    import matplotlib  # lazy: plots only (+0.7 s import)
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt  # lazy: after matplotlib.use, as above
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


def markdown_table(header: Sequence[str], rows: Sequence[Sequence], fmt: Optional[Dict[int, str]] = None) -> str:
    def cell(i, v):
        if isinstance(v, float):
            return 'n/a' if v != v else ('-' if v == float('inf') else format(v, (fmt or {}).get(i, '.2f')))
        return str(v)
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(cell(i, v) for i, v in enumerate(row)) + ' |' for row in rows]
    return '\n'.join(lines)
