"""Write or check docs/options.md, the option reference generated from the schema (``distill/schema.py``).

    python -m sdakd_basicsr.tools.options_doc --write    # after changing the schema
    python -m sdakd_basicsr.tools.options_doc --check    # exit 1 when docs/options.md is stale (CI, tests)
"""
import argparse
import sys
from typing import List, Optional

from sdakd_basicsr.distill.schema_doc import options_markdown

DEFAULT_PATH = 'docs/options.md'


def is_fresh(path: str) -> bool:
    """Whether ``path`` holds exactly what the schema generates now."""
    try:
        with open(path, encoding='utf-8') as f:
            return f.read() == options_markdown() + '\n'
    except FileNotFoundError:
        return False


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument('--write', action='store_true', help='regenerate the file')
    mode.add_argument('--check', action='store_true', help='exit 1 when the file differs from the schema')
    parser.add_argument('--path', default=DEFAULT_PATH, help=f'the reference file (default {DEFAULT_PATH})')
    args = parser.parse_args(argv)
    if args.write:
        with open(args.path, 'w', encoding='utf-8') as f:
            f.write(options_markdown() + '\n')
        print(f'wrote {args.path}')
        return 0
    if is_fresh(args.path):
        print(f'{args.path} is up to date')
        return 0
    print(f'{args.path} is stale: run `python -m sdakd_basicsr.tools.options_doc --write`', file=sys.stderr)
    return 1


if __name__ == '__main__':
    sys.exit(main())
