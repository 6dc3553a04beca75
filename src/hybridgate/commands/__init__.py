"""CLI commands too big for cli.py, one module per area; cli.py registers them."""
