"""Offline: train learned routers, and retrain them on production outcomes. Never imported by the
request path."""
