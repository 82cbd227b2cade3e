"""Lint: every import inside a function says why it is not at the top of its module.

A function-level import is accepted when its line, or the first line of the run of import lines it belongs to,
carries a ``# lazy: <reason>`` comment (an optional dependency, a slow import only some commands need, an order
that isort would break), or when the module states one reason for all of them in a ``# lazy-imports: <reason>``
line. Everything else belongs at the top, where the layer contract (``.importlinter``) sees it.

    python scripts/check_lazy_imports.py [paths ...]   (default: sdakd_basicsr/; exit 1 on a finding)
"""
import ast
import sys
from pathlib import Path
from typing import Iterator, List, Tuple


def unjustified_imports(source: str) -> Iterator[Tuple[int, str]]:
    """(line, statement) of every function-level import of ``source`` without a reason."""
    lines = source.splitlines()
    if any(line.startswith('# lazy-imports:') for line in lines):
        return
    tree = ast.parse(source)
    seen = set()
    for func in ast.walk(tree):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(func):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or node.lineno in seen:
                continue
            seen.add(node.lineno)
            first = node.lineno
            while first > 1 and lines[first - 2].strip().startswith(('import ', 'from ')):
                first -= 1  # the run of import lines this one belongs to
            if '# lazy:' not in lines[node.lineno - 1] and '# lazy:' not in lines[first - 1]:
                yield node.lineno, lines[node.lineno - 1].strip()


def main(paths: List[str]) -> int:
    findings = 0
    for root in paths or ['sdakd_basicsr']:
        files = [Path(root)] if root.endswith('.py') else sorted(Path(root).rglob('*.py'))
        for file in files:
            for line, text in unjustified_imports(file.read_text(encoding='utf-8')):
                print(f'{file}:{line}: function-level import without a `# lazy: <reason>` comment: {text}')
                findings += 1
    return 1 if findings else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
