"""Alias kept for old command lines: python -m sdakd_basicsr.export -> python -m sdakd_basicsr.tools.export."""
from sdakd_basicsr.tools.export import main

if __name__ == '__main__':
    raise SystemExit(main())
