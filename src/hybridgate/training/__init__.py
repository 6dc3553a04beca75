"""Offline: train, calibrate and evaluate learned routers (``hybridgate router train|eval``), and
retrain them on production outcomes (``hybridgate router retrain``). The request path never
imports it; ``hybridgate.router`` loads what it writes."""
