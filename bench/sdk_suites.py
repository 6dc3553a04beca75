"""Run the official SDKs' own resource tests (chat completions, messages, count_tokens, models)
against a hybridgate gateway on 127.0.0.1, and print a JSON summary.

Offline tool, never imported by the gateway. The SDK repositories are not vendored: give each
(``--openai`` / ``--anthropic``) as the SDK's sdist for the installed version (it ships the tests:
``pip download --no-deps --no-binary :all: openai==X``), a checkout or a git directory; the
test files are extracted into a temporary directory. Their
own ``conftest.py`` needs the SDKs' private test tooling (a respx fork, http-snapshot), so a
small one written here gives the suites the fixtures they use (``client`` / ``async_client``,
loose and strict response validation, the aiohttp transport where installed) with their own
placeholder API keys, pointed at the gateway (``TEST_API_BASE_URL`` too, as their tests read it).

The gateway is the real CLI (``hybridgate serve``) in a child process. Stand-ins, not the real
providers: an OpenAI chat-completions server (provider ``openai``, tests/standins/openai_upstream.py)
and an Anthropic Messages server (tests/standins/anthropic_upstream.py); the SDK tests' model
names (``gpt-*``, ``claude-*``) reach them through ``[models]`` aliases: each suite its own
provider's stand-in (``--tier direct``), or the other one (``--tier cross``: the translation path).

Tests that send placeholder values no real server accepts are run too, but counted as
excluded with the reason (EXCLUDED below); the rest must pass.

    for sdk in openai==3.63.0 anthropic==2.17.0; do
        pip download --no-deps --no-binary :all: $sdk -d sdists; done
    PYTHONPATH=src:. .venv/bin/python bench/sdk_suites.py \\
        --openai sdists/openai-3.63.0.tar.gz --anthropic sdists/anthropic-2.17.0.tar.gz

(the versions installed; a git checkout's tests may target another SDK version and fail on
parameters it no longer has).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tests.gateway_process import run_gateway
from tests.standins.anthropic_upstream import run_anthropic_standin
from tests.standins.openai_upstream import run_openai_standin

SUITES: dict[str, list[str]] = {
    "openai": [
        "tests/api_resources/chat/test_completions.py",
        "tests/api_resources/chat/completions/test_messages.py",
        "tests/api_resources/test_models.py",
    ],
    "anthropic": [
        "tests/api_resources/test_messages.py",
        "tests/api_resources/test_models.py",
    ],
}
# Support files each suite's tests import (tests.utils.assert_matches_type), never its conftest.
SUPPORT = ["tests/__init__.py", "tests/utils.py", "tests/api_resources/__init__.py"]

# (suite, test-id glob) -> why no real server accepts what the test sends. Matched against
# "<file>::<Class>::<test>[params]"; ``test_[mrs][aet]*`` is test_method_* / test_raw_response_* /
# test_streaming_response_*, not test_path_params_* (checked in the client). Every other test must pass.
_STORED = (
    "the placeholder id 'completion_id' names no stored completion: a real server answers 404 "
    '(so does hybridgate, which stores chat completions with [responses] store = "local")'
)
EXCLUDED: dict[tuple[str, str], str] = {
    ("openai", "*chat/test_completions.py::*::test_*_create_with_all_params_*"): (
        "max_tokens=0 and max_completion_tokens=0: OpenAI requires >= 1 (400); the body also "
        "combines `functions` with `tools` and `audio` with text-only `modalities`"
    ),
    ("openai", "*chat/test_completions.py::*::test_method_retrieve*"): _STORED,
    ("openai", "*chat/test_completions.py::*::test_raw_response_retrieve*"): _STORED,
    ("openai", "*chat/test_completions.py::*::test_streaming_response_retrieve*"): _STORED,
    ("openai", "*chat/test_completions.py::*::test_method_update*"): _STORED,
    ("openai", "*chat/test_completions.py::*::test_raw_response_update*"): _STORED,
    ("openai", "*chat/test_completions.py::*::test_streaming_response_update*"): _STORED,
    ("openai", "*chat/test_completions.py::*::test_method_delete*"): _STORED,
    ("openai", "*chat/test_completions.py::*::test_raw_response_delete*"): _STORED,
    ("openai", "*chat/test_completions.py::*::test_streaming_response_delete*"): _STORED,
    ("openai", "*chat/completions/test_messages.py::*::test_method_list*"): _STORED,
    ("openai", "*chat/completions/test_messages.py::*::test_raw_response_list*"): _STORED,
    ("openai", "*chat/completions/test_messages.py::*::test_streaming_response_list*"): _STORED,
    ("openai", "*test_models.py::*::test_[mrs][aet]*_delete*"): (
        "deletes the placeholder fine-tuned model 'ft:gpt-4.1-mini-2025-04-14:acemeco:suffix:abc123', "
        "which does not exist: a real server answers 404 (hybridgate deletes no models: 405)"
    ),
    ("anthropic", "*test_messages.py::*::test_method_create_with_all_params_*"): (
        "tools[0].input_schema has properties 'bar', not JSON Schemas: the Messages API answers "
        "400 (an invalid input_schema); hybridgate checks tool schemas the same way"
    ),
    ("anthropic", "*test_models.py::*::test_[mrs][aet]*_retrieve*"): (
        "retrieves the placeholder model id 'model_id': a real server answers 404"
    ),
}

CONFTEST = '''"""The fixtures the SDK's resource tests use, pointed at the gateway (bench/sdk_suites.py)."""
from __future__ import annotations

import os
from typing import Any, AsyncIterator, Iterator

import pytest
from pytest_asyncio import is_async_test

import {sdk} as sdk

BASE_URL = os.environ["TEST_API_BASE_URL"]
API_KEY = {api_key!r}


def pytest_collection_modifyitems(items: list[pytest.Function]) -> None:
    for item in items:
        if is_async_test(item):
            item.add_marker(pytest.mark.asyncio(loop_scope="session"), append=False)


@pytest.fixture(scope="session")
def client(request: Any) -> Iterator[Any]:
    strict = getattr(request, "param", True)
    options = dict(base_url=BASE_URL, api_key=API_KEY, max_retries=0, _strict_response_validation=strict)
    with sdk.{sync}(**options) as c:
        yield c


@pytest.fixture(scope="session")
async def async_client(request: Any) -> AsyncIterator[Any]:
    param = getattr(request, "param", True)
    strict, http_client = True, None
    if isinstance(param, dict):
        strict = param.get("strict", True)
        if param.get("http_client") == "aiohttp":
            http_client = sdk.DefaultAioHttpClient()
    elif isinstance(param, bool):
        strict = param
    options = dict(base_url=BASE_URL, api_key=API_KEY, max_retries=0, _strict_response_validation=strict)
    async with sdk.{async_}(**options, http_client=http_client) as c:
        yield c
'''
FIXTURES = {
    # the placeholder keys the SDKs' own conftest files use
    "openai": {"sdk": "openai", "api_key": "My API Key", "sync": "OpenAI", "async_": "AsyncOpenAI"},
    "anthropic": {
        "sdk": "anthropic",
        "api_key": "my-anthropic-api-key",
        "sync": "Anthropic",
        "async_": "AsyncAnthropic",
    },
}


def extract(source: Path, paths: list[str], dest: Path) -> str:
    """Copy ``paths`` out of an sdist, a work tree or a git directory into ``dest``; returns
    what was read (the sdist's name, or the commit)."""
    if source.is_file():  # an sdist (``pip download --no-binary :all: --no-deps openai==X``)
        with tarfile.open(source) as sdist:
            for member in sdist.getmembers():
                _, _, inner = member.name.partition("/")
                if inner in paths and member.isfile():
                    (dest / inner).parent.mkdir(parents=True, exist_ok=True)
                    (dest / inner).write_bytes(sdist.extractfile(member).read())  # type: ignore[union-attr]
        missing = [path for path in paths if not (dest / path).is_file()]
        if missing:
            raise SystemExit(f"{source} has no {missing}")
        return source.name
    if (source / "tests").is_dir():  # a work tree: read the files as they are
        for path in paths:
            (dest / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source / path, dest / path)
        git = ["git", "-C", str(source)]
    else:
        subprocess.run(
            ["tar", "-x", "-C", str(dest)],
            check=True,
            input=subprocess.run(
                ["git", f"--git-dir={source}", "archive", "HEAD", *paths], check=True, capture_output=True
            ).stdout,
        )
        git = ["git", f"--git-dir={source}"]
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    return commit or "unknown"


def gateway_config(openai_url: str, anthropic_url: str, ledger: Path, tier: str) -> str:
    to_claude, to_gpt = (
        ("stub_openai", "stub_anthropic") if tier == "cross" else ("stub_anthropic", "stub_openai")
    )
    return f"""environment = "test"
[ledger]
path = "{ledger}"
flush_interval_s = 0.05
[backends.stub_openai]
type = "openai_compat"
base_url = "{openai_url}"
model = "gpt-4o-mini"
api_key_env = "UP_KEY"
provider = "openai"
timeout_s = 10
[backends.stub_anthropic]
type = "anthropic"
base_url = "{anthropic_url}"
model = "claude-haiku-4-5"
api_key_env = "CLAUDE_KEY"
timeout_s = 10
[routes.auto]
try = ["stub_openai"]
[routes.claude]
try = ["{to_claude}"]
[routes.gpt]
try = ["{to_gpt}"]
[models]
"claude-*" = "claude"
"gpt-*" = "gpt"
[responses]
store = "local"
"""


@contextmanager
def gateway(workdir: Path, tier: str) -> Iterator[str]:
    with ExitStack() as stack:
        oai = stack.enter_context(run_openai_standin(api_key="sk-up"))
        ant = stack.enter_context(run_anthropic_standin(api_key="sk-ant"))
        config = gateway_config(oai.base_url, ant.base_url, workdir / "ledger.db", tier)
        gw = stack.enter_context(
            run_gateway(config, workdir, env={"UP_KEY": "sk-up", "CLAUDE_KEY": "sk-ant"})
        )
        yield gw.url


def run_suite(name: str, source: Path, base_url: str, workdir: Path) -> dict[str, object]:
    root = workdir / name
    root.mkdir()
    commit = extract(source, SUPPORT + SUITES[name], root)
    (root / "tests" / "conftest.py").write_text(CONFTEST.format(**FIXTURES[name]))
    report = root / "junit.xml"
    env = {**os.environ, "TEST_API_BASE_URL": base_url}
    env.pop("PYTHONPATH", None)  # the suite imports its own tests package and the installed SDK
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_mode=auto",
            "--rootdir",
            str(root),
            f"--junitxml={report}",
            *SUITES[name],
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    passed: list[str] = []
    failed: dict[str, str] = {}
    excluded: dict[str, dict[str, str]] = {}
    skipped: dict[str, str] = {}
    for case in ET.parse(report).iter("testcase"):
        test_id = f"{case.get('classname', '').replace('.', '/')}::{case.get('name')}"
        test_id = _readable(test_id)
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        skip = case.find("skipped")
        reason = next(
            (
                why
                for (suite, pattern), why in EXCLUDED.items()
                if suite == name and fnmatch.fnmatchcase(test_id, pattern)
            ),
            None,
        )
        if reason is not None:
            outcome = "skipped" if skip is not None else ("failed" if problem is not None else "passed")
            excluded[test_id] = {"reason": reason, "outcome": outcome}
        elif skip is not None:
            skipped[test_id] = skip.get("message", "")
        elif problem is not None:
            failed[test_id] = (problem.get("message") or "")[:300]
        else:
            passed.append(test_id)
    return {
        "source": str(source),
        "read": commit,
        "sdk_version": _version(FIXTURES[name]["sdk"]),
        "files": SUITES[name],
        "passed": len(passed),
        "failed": failed,
        "skipped": skipped,
        "excluded": excluded,
        "pytest_tail": proc.stdout.strip().splitlines()[-1:] if proc.stdout else proc.stderr[-500:],
    }


def _readable(test_id: str) -> str:
    """``tests/api_resources/test_models/TestModels::test_x`` (junit's classname and name) ->
    ``tests/api_resources/test_models.py::TestModels::test_x``."""
    path, _, rest = test_id.partition("::")
    head, _, cls = path.rpartition("/")
    return f"{head}.py::{cls}::{rest}"


def _version(sdk: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", f"import {sdk}; print({sdk}.__version__)"], capture_output=True, text=True
    ).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--openai", type=Path, help="openai sdist (.tar.gz), checkout or git directory")
    parser.add_argument("--anthropic", type=Path, help="anthropic sdist (.tar.gz), checkout or git directory")
    parser.add_argument(
        "--tier",
        choices=["direct", "cross"],
        default="direct",
        help="direct: each suite's model names reach its provider's stand-in; cross: the other one",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (printed)")
    args = parser.parse_args()
    sources = {"openai": args.openai, "anthropic": args.anthropic}
    workdir = Path(tempfile.mkdtemp(prefix="sdk-suites-"))
    summary: dict[str, object] = {"tier": args.tier}
    try:
        with gateway(workdir, args.tier) as url:
            for name, source in sources.items():
                if source is not None:
                    base = f"{url}/v1" if name == "openai" else url
                    summary[name] = run_suite(name, source.resolve(), base, workdir)
    finally:
        if args.keep:
            summary["workdir"] = str(workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
