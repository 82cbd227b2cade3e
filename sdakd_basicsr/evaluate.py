"""Alias kept for old command lines: python -m sdakd_basicsr.evaluate -> python -m sdakd_basicsr.tools.evaluate."""
from sdakd_basicsr.tools.evaluate import main

if __name__ == '__main__':
    raise SystemExit(main())
