"""The flow of one chat request: cache, route, screen, cascade (``core``), its stream
(``stream``), the shadow copies it sends (``shadow``), and its price, ledger row, metrics and
charge (``recorder``). See docs/architecture.md."""
