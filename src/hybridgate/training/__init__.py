"""Offline: train, calibrate and evaluate learned routers (``hybridgate router train|eval``).
The request path never imports it; ``hybridgate.router`` loads what it writes."""
