"""The flow of one chat request: cache, route, screen, cascade, record (``core``), its stream
(``stream``) and the shadow copies it sends (``shadow``). See docs/architecture.md."""
