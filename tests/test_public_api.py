"""The package's public surface is exactly what ``__all__`` promises."""

from __future__ import annotations

from pathlib import Path

import pytest

import hybridgate


def test_public_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the default ledger and its secret live in the working directory
    assert sorted(hybridgate.__all__) == ["GatewayConfig", "create_app", "load_config"]
    assert all(callable(getattr(hybridgate, name)) for name in hybridgate.__all__)
    app = hybridgate.create_app(hybridgate.load_config(None))
    assert app.state.gateway.config.routes["local"].try_ == ["local"]
