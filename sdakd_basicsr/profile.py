"""Alias kept for old command lines: python -m sdakd_basicsr.profile -> python -m sdakd_basicsr.tools.profile."""
from sdakd_basicsr.tools.profile import main

if __name__ == '__main__':
    raise SystemExit(main())
