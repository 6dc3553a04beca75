"""``hybridgate tco --measure URL``: the local tier priced from a real server's measured speed.

No stand-in: the server is llama-cpp-python's OpenAI-compatible ``llama_cpp.server`` running
SmolLM2-135M-Instruct (tests/llama_server.py) on 127.0.0.1, started with ``--interrupt_requests
False`` so concurrent streams queue instead of cutting each other short. Its own access log
counts the requests the load test sent. Kept cheap: a few short replies per level.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from hybridgate.commands.tco import tco_command
from tests.gateway_process import free_port
from tests.llama_server import LlamaServer, start_llama_server, wait_ready

app = typer.Typer()
app.command("tco")(tco_command)
app.command("noop")(lambda: None)  # two commands, so "tco" is a subcommand as in cli.py
runner = CliRunner()
HOURLY = 0.10  # $/hour of the machine under test, as the operator would give it
PLAN = ["--measure-concurrency", "1,2", "--measure-requests", "3", "--measure-max-tokens", "24"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    log = tmp_path_factory.mktemp("llama") / "server.log"
    started = start_llama_server(log, "--interrupt_requests", "False")
    try:
        wait_ready(started)
        yield started
    finally:
        started.stop()


def test_measure_prices_the_local_tier_from_the_measured_server(server: LlamaServer) -> None:
    before = server.chats_served()
    args = ["tco", "--daily-tokens", "5M", "--blended-price", "8", "--gpu-hourly", str(HOURLY)]
    result = runner.invoke(app, [*args, "--measure", server.base_url, *PLAN, "--json"])
    assert result.exit_code == 0, result.output
    assert server.chats_served() - before == 6  # 3 requests at each of 2 levels: bounded
    report = json.loads(result.stdout)
    tier, measured = report["local_tier"], report["local_tier"]["measured_server"]
    assert measured["url"] == server.base_url and measured["token_count"] == "chunks"
    assert measured["complete"] is True
    assert [level["concurrency"] for level in measured["levels"]] == [1, 2]
    for level in measured["levels"]:
        assert level["requests"] == 3 and level["errors"] == 0
        # Each reply streamed between 1 and max_tokens tokens; a 135M model on one CPU thread
        # makes a few to a few hundred tokens a second, and its first token comes within seconds.
        assert 3 <= level["output_tokens"] <= 3 * 24
        assert 1 < level["output_tps"] < 2000
        assert level["output_tps"] == pytest.approx(level["output_tokens"] / level["wall_s"], rel=0.02)
        assert 0 < level["ttft_p50_ms"] <= level["ttft_p95_ms"] < 30_000
    best = max(measured["levels"], key=lambda level: level["output_tps"])
    assert measured["output_tps"] == best["output_tps"]
    assert measured["best_concurrency"] == best["concurrency"]

    # The measured speed, never a profile's, prices the tier: hourly / (tps * 3600 * utilisation).
    tps = tier["throughput_tps"]
    assert tps == pytest.approx(best["output_tps"], abs=0.01)
    assert tier["throughput_source"].startswith(f"measured at {server.base_url}")
    assert tier["gpu_hourly_usd"] == HOURLY and tier["utilisation"] == 0.5
    assert tier["usd_per_mtok"] == pytest.approx(HOURLY / (tps * 3600 * 0.5) * 1e6, rel=1e-3)
    # ... and sizes the self-hosted stack: 5M tokens a day needs this many such nodes.
    # (tps is reported to 2 decimals: at a node boundary the rounding may move the ceiling by one)
    def nodes_at(speed: float) -> int:
        return math.ceil(5e6 / (speed * 86_400 * 0.5))

    assert nodes_at(tps + 0.005) <= report["rows"][0]["selfhost_nodes"] <= nodes_at(tps - 0.005)
    assert report["assumptions"]["sources"]["throughput"].startswith("measured at ")

    text = runner.invoke(app, [*args, "--measure", server.base_url, *PLAN]).stdout
    assert f"measured at {server.base_url}" in text and "concurrency 2:" in text
    assert "TTFT p50" in text and f"${HOURLY:g}/hour" in text


def test_measure_stops_at_its_time_budget(server: LlamaServer) -> None:
    before = server.chats_served()
    args = ["tco", "--daily-tokens", "5M", "--blended-price", "8", "--gpu-hourly", "1"]
    plan = ["--measure-concurrency", "1", "--measure-requests", "50", "--measure-budget-s", "3"]
    result = runner.invoke(app, [*args, "--measure", server.base_url, *plan, "--json"])
    sent = server.chats_served() - before
    assert 1 <= sent < 50  # far fewer than asked: the budget stopped it
    if result.exit_code == 0:  # something finished within 3 s: priced, but flagged as partial
        measured = json.loads(result.stdout)["local_tier"]["measured_server"]
        assert measured["complete"] is False and measured["levels"][0]["errors"] > 0
    else:  # nothing finished on a very slow machine: no price made up
        assert result.exit_code == 1 and "no streamed completion" in result.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--measure", "http://127.0.0.1:9/v1"], "needs --gpu-hourly"),
        (["--measure", "http://127.0.0.1:9", "--gpu-hourly", "1", "--throughput-tps", "5"], "not both"),
        (["--measure", "ftp://127.0.0.1/v1", "--gpu-hourly", "1"], "http(s) URL"),
        (["--measure", "http://u:p@127.0.0.1:9/v1", "--gpu-hourly", "1"], "credentials"),
        (["--measure", "http://127.0.0.1:9", "--gpu-hourly", "1", "--measure-requests", "0"], "between"),
        (["--measure", "http://127.0.0.1:9", "--gpu-hourly", "1", "--measure-concurrency", "x"], "whole"),
    ],
)
def test_measure_options_are_checked(extra: list[str], message: str) -> None:
    result = runner.invoke(app, ["tco", "--daily-tokens", "5M", "--blended-price", "8", *extra])
    assert result.exit_code == 2 and message in result.stderr, result.output


def test_measure_of_nothing_listening_is_exit_1() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    args = ["tco", "--daily-tokens", "5M", "--blended-price", "8", "--gpu-hourly", "1", "--measure", url]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "could not reach" in result.stderr, result.output


def test_streams_cut_short_are_failures_not_throughput(tmp_path: Path) -> None:
    """llama_cpp.server's default interrupts a stream when another request arrives: it ends with
    ``[DONE]`` but no ``finish_reason``. Those replies must not count as completed tokens."""
    interrupting = start_llama_server(tmp_path / "server.log")  # default: --interrupt_requests True
    try:
        wait_ready(interrupting)
        args = ["tco", "--daily-tokens", "5M", "--blended-price", "8", "--gpu-hourly", "1"]
        plan = [
            "--measure-concurrency",
            "2",
            "--measure-requests",
            "4",
            "--measure-max-tokens",
            "32",
            "--json",
        ]
        result = runner.invoke(app, [*args, "--measure", interrupting.base_url, *plan])
        assert result.exit_code == 0, result.output
        level = json.loads(result.stdout)["local_tier"]["measured_server"]["levels"][0]
        assert level["errors"] >= 1 and level["requests"] + level["errors"] == 4
        assert level["output_tokens"] <= level["requests"] * 32  # only finished replies' tokens
        assert json.loads(result.stdout)["local_tier"]["measured_server"]["complete"] is False
    finally:
        interrupting.stop()
