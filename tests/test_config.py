"""Config loading: defaults, validation messages, env-driven cloud tiers."""

from __future__ import annotations

from pathlib import Path

import pytest

from hybridgate.config import default_config, load_config
from hybridgate.errors import ConfigError


def test_default_without_keys_is_local_only() -> None:
    config = default_config({})
    assert set(config.backends) == {"local"}
    assert config.routes["auto"].try_ == ["local"]
    assert config.rules == []


def test_default_adds_cloud_tiers_for_keys_present() -> None:
    config = default_config({"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k"})
    assert config.routes["auto"].try_ == ["local", "openai", "anthropic"]
    assert {rule.name for rule in config.rules} == {"images-need-vision", "long-prompt"}


def test_unknown_key_is_named_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text('[backends.local]\ntype = "embedded"\ncolour = "red"\n[routes.auto]\ntry = ["local"]\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in err.value.message
    assert "unknown key 'backends.local.colour'" in err.value.message


def test_route_to_unknown_backend_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text('[backends.local]\ntype = "embedded"\n[routes.auto]\ntry = ["local", "gpu"]\n')
    with pytest.raises(ConfigError, match="unknown backend 'gpu'"):
        load_config(path)


def test_a_route_named_auto_that_default_route_shadows_is_refused(tmp_path: Path) -> None:
    routes = '[routes.auto]\ntry = ["local"]\n[routes.fast]\ntry = ["local"]\n'
    path = tmp_path / "gw.toml"
    path.write_text(f'default_route = "fast"\n[backends.local]\ntype = "embedded"\n{routes}')
    with pytest.raises(ConfigError, match="route 'auto' can never be chosen"):
        load_config(path)
    rule = '[[rules]]\nname = "long"\nmin_prompt_tokens = 100\nroute = "auto"\n'
    path.write_text(f'default_route = "fast"\n[backends.local]\ntype = "embedded"\n{routes}{rule}')
    assert load_config(path).default_route == "fast"  # a rule reaches it: not a trap


def test_an_environment_no_key_can_name_is_refused_when_keys_are_required(tmp_path: Path) -> None:
    # Keys look like hg-<environment>-<secret> and must name the gateway's environment, so with
    # "Production" and auth on every request would get a 401, whatever key it brought.
    base = '[backends.local]\ntype = "embedded"\n[routes.auto]\ntry = ["local"]\n'
    path = tmp_path / "gw.toml"
    path.write_text(f'environment = "Production"\n[auth]\nenabled = true\n{base}')
    with pytest.raises(ConfigError, match="environment: 'Production' cannot name API keys"):
        load_config(path)
    path.write_text(f'environment = "Production"\n{base}')  # no keys: only a label
    assert load_config(path).environment == "Production"
    path.write_text(f'environment = "prod-eu.1"\n[auth]\nenabled = true\n{base}')
    assert load_config(path).environment == "prod-eu.1"


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="hybridgate init"):
        load_config(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[backends\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_shipped_example_is_valid() -> None:
    example = Path(__file__).parents[1] / "src" / "hybridgate" / "hybridgate.example.toml"
    config = load_config(example)
    assert "auto" in config.routes and config.rules
