"""``hybridgate keys`` create / list / revoke through typer's CliRunner, against a real keys file.

The key printed by ``create`` is then verified with the same ``SqliteKeyStore`` the gateway uses, so
the round trip covers the pepper file the CLI makes beside the database.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hybridgate.auth.keys import SqliteKeyStore, pepper_file
from hybridgate.commands.keys import app
from hybridgate.errors import AuthenticationError

runner = CliRunner()


@pytest.fixture(autouse=True)
def no_pepper_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYBRIDGATE_KEY_PEPPER", raising=False)


def gateway_store(db: Path) -> SqliteKeyStore:
    return SqliteKeyStore(db, pepper_file(db).read_bytes().strip())


async def test_create_list_revoke_round_trip(tmp_path: Path) -> None:
    db = tmp_path / "keys.db"
    created = runner.invoke(
        app,
        ["create", "--env", "prod", "--name", "app1", "--rpm", "60", "--budget-usd-day", "2.5",
         "--routes", "auto,local", "--expires-days", "30", "--keys-db", str(db)],
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert key.startswith("hg-prod-") and "\n" not in key
    record = await gateway_store(db).verify(key, environment="prod")
    assert f"created key {record.key_id}" in created.stderr and "only this once" in created.stderr
    assert (record.rpm, record.budget_usd_day, record.routes) == (60, 2.5, ("auto", "local"))

    listed = runner.invoke(app, ["list", "--json", "--keys-db", str(db)])
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.stdout)
    assert row["key_id"] == record.key_id and row["status"] == "active"
    table = runner.invoke(app, ["list", "--keys-db", str(db)])
    assert record.key_id in table.stdout and "app1" in table.stdout
    for output in (listed.output, table.output):
        assert key not in output and key[len("hg-prod-") + 8 :] not in output

    revoked = runner.invoke(app, ["revoke", record.key_id, "--keys-db", str(db)])
    assert revoked.exit_code == 0 and f"revoked key {record.key_id}" in revoked.stdout
    assert json.loads(runner.invoke(app, ["list", "--json", "--keys-db", str(db)]).stdout)[0]["status"] == (
        "revoked"
    )
    with pytest.raises(AuthenticationError, match="revoked"):
        await gateway_store(db).verify(key)


def test_revoke_of_an_unknown_id_fails(tmp_path: Path) -> None:
    db = tmp_path / "keys.db"
    runner.invoke(app, ["create", "--env", "dev", "--name", "x", "--keys-db", str(db)])
    result = runner.invoke(app, ["revoke", "nosuchid", "--keys-db", str(db)])
    assert result.exit_code == 1 and "no key with id 'nosuchid'" in result.stderr


def test_list_without_a_database_says_how_to_make_one(tmp_path: Path) -> None:
    result = runner.invoke(app, ["list", "--keys-db", str(tmp_path / "none.db")])
    assert result.exit_code == 1 and "keys create" in result.stderr
    assert not (tmp_path / "none.db").exists()


def test_bad_settings_exit_2_without_printing_a_key(tmp_path: Path) -> None:
    db = tmp_path / "keys.db"
    for options in (["--env", "Prod"], ["--env", "prod", "--rpm", "0"]):
        result = runner.invoke(app, ["create", "--name", "x", *options, "--keys-db", str(db)])
        assert result.exit_code == 2 and result.stdout == ""
    assert json.loads(runner.invoke(app, ["list", "--json", "--keys-db", str(db)]).stdout) == []


def test_a_different_pepper_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "keys.db"
    runner.invoke(app, ["create", "--env", "prod", "--name", "x", "--keys-db", str(db)])
    monkeypatch.setenv("HYBRIDGATE_KEY_PEPPER", "not-the-file-one")
    result = runner.invoke(app, ["list", "--keys-db", str(db)])
    assert result.exit_code == 2 and "another pepper" in result.stderr


CONFIG = '[backends.local]\ntype = "embedded"\n[routes.auto]\ntry = ["local"]\n[auth]\n'


async def test_config_names_the_store(tmp_path: Path) -> None:
    db = tmp_path / "from-config.db"
    config = tmp_path / "hybridgate.toml"
    config.write_text(CONFIG + f'keys_path = "{db}"\n')
    created = runner.invoke(app, ["create", "--env", "prod", "--name", "x", "--config", str(config)])
    assert created.exit_code == 0, created.output
    assert (await gateway_store(db).verify(created.stdout.strip())).name == "x"
    listed = runner.invoke(app, ["list", "--json", "--config", str(config)])
    assert [row["name"] for row in json.loads(listed.stdout)] == ["x"]


def test_a_postgres_store_without_the_pepper_variable_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "hybridgate.toml"
    config.write_text(CONFIG + 'keys_store = "postgres"\n[postgres]\ndsn = "postgresql://x@127.0.0.1:1/db"\n')
    result = runner.invoke(app, ["list", "--config", str(config)])
    assert result.exit_code == 2 and "HYBRIDGATE_KEY_PEPPER" in result.stderr


def test_an_unreachable_postgres_store_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYBRIDGATE_KEY_PEPPER", "shared-pepper")
    config = tmp_path / "hybridgate.toml"
    config.write_text(CONFIG + 'keys_store = "postgres"\n[postgres]\ndsn = "postgresql://x@127.0.0.1:1/db"\n')
    for command in (["list"], ["revoke", "abcdefgh"], ["create", "--env", "prod", "--name", "x"]):
        result = runner.invoke(app, [*command, "--config", str(config)])
        assert result.exit_code == 2 and "cannot reach PostgreSQL at 127.0.0.1:1/db" in result.stderr
        assert result.stdout == ""
