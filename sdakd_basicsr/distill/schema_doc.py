"""docs/options.md, generated from the schema: the SDAKD blocks (``schema.py``) and BasicSR's own blocks
(``file_schema.py``); ``tools/options_doc`` writes and checks the file."""
import dataclasses
from dataclasses import MISSING

from . import file_schema as fs
from .schema import DOCUMENTED_BLOCKS, _names


def _default_text(f: dataclasses.Field) -> str:
    if f.metadata['required']:
        return 'required'
    value = f.default_factory() if f.default_factory is not MISSING else f.default
    if value is None:
        return '~'
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def options_markdown() -> str:
    """The option reference (docs/options.md), generated from the schema."""
    lines = ['# Option reference', '',
             'Generated from `sdakd_basicsr/distill/schema.py` and `file_schema.py` by '
             '`python -m sdakd_basicsr.tools.options_doc '
             '--write`; do not edit by hand. Unknown keys in these blocks are errors; `~` is YAML null.',
             '',
             'Beyond these tables, `distill.options.resolve_options` (run once, by the pre-flight or when a model '
             'is built from Python) checks `network_*` blocks (and '
             '`sdakd.teacher_g.network`), the `*_opt` losses, optimizers, the scheduler and `val.metrics` against '
             'the constructor or function they are passed to (unknown arguments, values of another kind than the '
             "default, weights >= 0, the optimizer's own argument checks); Real-ESRGAN's top-level degradation "
             'keys (probabilities in [0, 1], [low, high] ranges, 3-way choices summing to 1); `path` keys against '
             'the networks in the file; the data on disk (`distill/data_checks.py`: folders, meta-info entries, a '
             'sample of image headers, crop and batch sizes, the LR/GT scale); and duplicate YAML keys. Datasets '
             'of other classes: the keys their source reads.', '']
    blocks = DOCUMENTED_BLOCKS + (('(top level, BasicSR)', fs.TopLevel), ('logger', fs.LoggerBlock),
                                  ('logger.wandb', fs.WandbBlock), ('val', fs.ValBlock),
                                  ('dist_params', fs.DistParams), ('datasets.<phase> (every dataset)', fs.LoaderKeys),
                                  ('datasets.<phase> (PairedImageDataset and subclasses)', fs.PairedKeys),
                                  ('datasets.train.cache_variants (TeacherCachedPairedDataset)', fs.CacheVariantKeys),
                                  ('datasets.<phase> (RealESRGANDataset and subclasses)', fs.SynthesisKeys))
    for where, cls in blocks:
        lines += [f'## `{where}`', '', (cls.__doc__ or '').strip(), '', '| key | default | meaning |', '|---|---|---|']
        for f in dataclasses.fields(cls):
            meaning = f.metadata['help']
            if f.metadata['choices'] is not None:
                meaning += f' (one of: {_names(f.metadata["choices"])})'
            if f.metadata['minimum'] is not None:
                meaning += f' (>= {f.metadata["minimum"]})'
            lines.append(f'| `{f.name}` | `{_default_text(f)}` | {meaning} |')
        lines.append('')
    return '\n'.join(lines)
