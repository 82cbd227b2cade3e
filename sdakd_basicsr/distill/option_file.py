"""The one reader of option files: BasicSR's ordered YAML loader (as ``train.py`` reads the file), a key given
twice is an error naming both lines, and ``--force_yml`` entries are applied as basicsr applies them. Every tool,
recipe and deploy module reads option files through ``read_option_file``."""
from os import path as osp
from typing import Sequence

import yaml

from basicsr.utils.options import _postprocess_yml_value, ordered_yaml


def _no_duplicates(loader_cls, path: str):
    """BasicSR's YAML loader, except that a key given twice in one mapping is an error (YAML keeps the last,
    silently), naming both lines."""

    class Loader(loader_cls):
        pass

    def construct_mapping(loader, node):
        seen = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key == '<<':
                continue
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ValueError(f'{path}: line {line}: duplicate key {key!r} (first on line {seen[key]}); YAML '
                                 'would silently keep only the last one: delete one of them')
            seen[key] = line
        return dict(loader.construct_pairs(node))  # plain dicts (ordered): yaml.safe_dump writes them back

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return Loader


def read_option_file(path: str, force_yml: Sequence[str] = ()) -> dict:
    """The option dict of ``path`` with ``force_yml`` entries (``key:sub=value``) applied, as basicsr's
    ``parse_options`` builds it. A missing file, a file that is not a mapping and a forced key whose parent is
    not in the file are errors naming the file."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'option file not found: {path}')
    with open(path, encoding='utf-8') as f:
        opt = yaml.load(f, Loader=_no_duplicates(ordered_yaml()[0], path))
    if not isinstance(opt, dict):
        raise ValueError(f'{path}: not an option file (YAML mapping expected, got {type(opt).__name__})')
    for entry in force_yml:
        keys, value = (part.strip() for part in entry.split('=', 1))
        node = opt
        *parents, leaf = keys.split(':')
        for key in parents:
            if not isinstance(node, dict) or key not in node:
                raise KeyError(f'--force_yml {entry}: {keys.rsplit(":", 1)[0]} is not in {path}')
            node = node[key]
        node[leaf] = _postprocess_yml_value(value)
    return opt
