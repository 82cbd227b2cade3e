"""Command-line tools (python -m sdakd_basicsr.tools.<name>)."""
