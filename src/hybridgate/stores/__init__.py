"""Plumbing to the stores the gateway shares with its replicas: Redis (``redis``) and PostgreSQL
(``postgres``: which errors are outages, how blocking work runs). No step of the flow."""
