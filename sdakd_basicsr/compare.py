"""Alias kept for old command lines: python -m sdakd_basicsr.compare -> python -m sdakd_basicsr.tools.compare."""
from sdakd_basicsr.tools.compare import main

if __name__ == '__main__':
    raise SystemExit(main())
