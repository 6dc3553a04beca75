"""``python -m hybridgate``: the same as the ``hybridgate`` command."""

from hybridgate.cli import main

main()
