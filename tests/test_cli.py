"""Rough edges of the CLI and config: clean errors, every problem at once, paths relative to the
config file, and what ``serve`` says when it starts (a real child process on 127.0.0.1 with an
OpenAI-compatible stand-in upstream, not OpenAI)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hybridgate.cli import app
from hybridgate.config import load_config
from hybridgate.errors import ConfigError
from hybridgate.ledger.records import LedgerRecord
from hybridgate.ledger.store import SqliteLedger
from tests.gateway_process import run_gateway, upstream_config
from tests.standins.openai_upstream import run_openai_standin

BASE = """
[backends.up]
type = "openai_compat"
base_url = "http://127.0.0.1:9/v1"
model = "m"
[routes.auto]
try = ["up"]
"""


def test_a_bad_regex_in_a_rule_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(BASE + '[[rules]]\nname = "r"\nroute = "auto"\nregex = "(unclosed"\n')
    with pytest.raises(ConfigError, match=r"rules\.0\.regex: .*not a valid regular expression"):
        load_config(path)
    result = CliRunner().invoke(app, ["usage", "-c", str(path)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert "not a valid regular expression" in result.output


def test_every_cross_reference_error_is_reported_at_once_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(
        'default_route = "nowhere"\n'
        + BASE
        + '[routes.b]\ntry = ["gpu"]\nshadow = { route = "ghost", percent = 5 }\n'
        + '[[rules]]\nname = "r"\nroute = "missing"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = caught.value.message
    for problem in (
        "routes.b.try: unknown backend 'gpu'",
        "routes.b.shadow.route: unknown route 'ghost'",
        "rules.0.route: rule 'r' names unknown route 'missing'",
        "default_route: 'nowhere' is not a route",
    ):
        assert problem in message, message


def test_paths_in_a_config_file_resolve_next_to_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "etc"
    home.mkdir()
    (home / "gw.toml").write_text('[ledger]\npath = "data/gw.db"\n[auth]\nkeys_path = "keys.db"\n' + BASE)
    config = load_config(home / "gw.toml")
    assert config.ledger.path == str(home / "data" / "gw.db")
    assert config.auth.keys_path == str(home / "keys.db")
    (home / "data").mkdir()
    ledger = SqliteLedger(str(home / "data" / "gw.db"))
    ledger.start()
    ledger.record(LedgerRecord(ts=time.time(), request_id="r", route="auto", cost_usd=1.0))
    ledger.close()
    # Another working directory, with a decoy ledger of the same relative name: never read.
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "data").mkdir(parents=True)
    decoy = SqliteLedger(str(elsewhere / "data" / "gw.db"))
    decoy.start()
    decoy.record(LedgerRecord(ts=time.time(), request_id="d", route="decoy"))
    decoy.close()
    monkeypatch.chdir(elsewhere)
    out = CliRunner().invoke(app, ["usage", "-c", str(home / "gw.toml"), "--json"]).output
    assert '"route": "auto"' in out and "decoy" not in out


def test_serve_says_where_it_listens_and_what_it_runs(tmp_path: Path) -> None:
    with run_openai_standin() as upstream:
        config = upstream_config(upstream.base_url, tmp_path / "gw.db")
        with run_gateway(config, tmp_path) as gateway:
            deadline = time.monotonic() + 10
            while "auth:" not in gateway.output() and time.monotonic() < deadline:
                time.sleep(0.05)
            banner = gateway.output()
    port = gateway.url.rsplit(":", 1)[1]
    assert f"hybridgate listening on http://127.0.0.1:{port}" in banner
    assert "routes:   auto -> up (default: auto)" in banner
    assert "backends: up (openai_compat gpt-4o-mini, cloud)" in banner
    assert f"ledger:   sqlite {os.path.realpath(tmp_path / 'gw.db')}" in banner
    assert "privacy:  off (no [privacy] section" in banner
    assert "auth:     off: anyone who can reach this port can use it" in banner


@pytest.mark.parametrize(
    ("argv", "needed", "not_needed"),
    [
        (["keys", "--help"], "hybridgate.commands.keys", "hybridgate.evals"),
        (["serve", "--help"], "hybridgate.config", "hybridgate.commands.keys"),
        (["route", "--help"], "hybridgate.commands.router", "hybridgate.tco"),
    ],
)
def test_a_command_imports_only_what_it_runs(argv: list[str], needed: str, not_needed: str) -> None:
    """Importing every command costs ~0.8 s at each start: ``keys create`` and ``serve`` skip the rest."""
    probe = (
        f"import sys; sys.argv = ['hybridgate', *{argv!r}]; import hybridgate.cli; "
        f"print({needed!r} in sys.modules, {not_needed!r} in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "False"], done.stderr


def test_help_without_a_command_lists_every_command() -> None:
    listing = CliRunner().invoke(app, ["--help"]).output
    for name in ("serve", "usage", "keys", "tco", "decide", "eval", "replay", "router", "route", "bench"):
        assert f" {name} " in listing
