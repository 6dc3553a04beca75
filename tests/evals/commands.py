"""The eval commands mounted on a Typer app, and a stand-in gateway config file, for CLI tests.

cli.py registers the same functions; mounting them here keeps these tests independent of it.
"""

from __future__ import annotations

from pathlib import Path

import typer

from hybridgate.commands.evals import eval_command, replay_command


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("eval")(eval_command)
    app.command("replay")(replay_command)
    return app


def config_toml(
    base_url: str,
    ledger: Path,
    *,
    auto: str = '["cheap", "cloud"]',
    log_prompts: bool = False,
    privacy: str | None = None,
) -> str:
    """A config whose backends are a stand-in OpenAI upstream at ``base_url`` (see conftest.py);
    ``privacy``: a ``[privacy]`` default policy (patterns only), recorded on each ledger row."""
    scan = f'[privacy]\npolicy = "{privacy}"\nner_model = "none"\n' if privacy else ""
    return (
        scan
        + f"""
[ledger]
path = "{ledger}"
flush_interval_s = 0.05
log_prompts = {str(log_prompts).lower()}
hmac_secret_env = "STANDIN_KEY"

[backends.cloud]
type = "openai_compat"
base_url = "{base_url}"
model = "gpt-4o-mini"
provider = "openai"
api_key_env = "STANDIN_KEY"

[backends.cheap]
type = "openai_compat"
base_url = "{base_url}"
model = "backup-model"
api_key_env = "STANDIN_KEY"
price = {{ input_per_mtok = 1, output_per_mtok = 2 }}

[routes.cloud]
try = ["cloud"]
[routes.cheap]
try = ["cheap"]
[routes.auto]
try = {auto}
"""
    )
