"""Benchmarks behind ``hybridgate bench ...``, outside the product: installed with it, imported
only by the CLI when a bench command runs. No module of ``hybridgate`` but ``hybridgate.cli`` imports
this package (an import-linter contract in pyproject.toml)."""
