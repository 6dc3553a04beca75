"""A fault-injecting OpenAI-compatible upstream for the fault and soak benches (offline tool).

The OpenAI stand-in from tests/standins (a test server, not OpenAI) in its own process, answering
each unscripted request with a random behaviour: with probability ``--fail-rate`` one fault drawn
evenly from ``--faults``, otherwise a normal echo reply. Faults before the first byte:

- ``500`` / ``503``: an OpenAI error body with that status;
- ``timeout``: the answer comes only after ``--timeout-delay-s`` (set it past the gateway's
  ``timeout_s`` for the backend);
- ``garbage``: a 200 with an HTML page instead of JSON;
- ``reset``: the connection is dropped before any of the body is sent.

Faults just after the first byte (a stream's role chunk, or half a JSON body when not streamed):

- ``first_drop``: the connection drops after the first chunk;
- ``early_error``: one content chunk, then an in-band ``data: {"error": ...}``;
- ``truncate``: two content chunks, then the body ends without ``[DONE]``;
- ``stall``: streams stop after the first chunk for ``--timeout-delay-s`` (not streamed: a normal
  reply, this fault exists only for streams).

Mid-stream, past a gateway's default commit point (4 content chunks):

- ``late_drop``: six content chunks, then the connection drops (not streamed: half a body).

Usage: ``.venv/bin/python bench/fault_upstream.py --port 9101 --fail-rate 0.2 --seed 1``. Binds
127.0.0.1 only; stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.standins.openai_upstream import (
    Drop,
    Fail,
    FailMidStream,
    Garbage,
    Reply,
    Truncate,
    run_openai_standin,
)
from tests.standins.openai_wire import Behaviour

BEFORE_FIRST_BYTE = ("500", "503", "timeout", "garbage", "reset")
AFTER_FIRST_BYTE = ("first_drop", "early_error", "truncate", "stall")
MID_STREAM = ("late_drop",)
FAULTS = BEFORE_FIRST_BYTE + AFTER_FIRST_BYTE + MID_STREAM
EIGHT = "one two three four five six seven eight"


def fault(kind: str, timeout_delay_s: float) -> Behaviour:
    if kind == "500":
        return Fail(status=500, type="server_error", message="injected 500")
    if kind == "503":
        return Fail(status=503, type="service_unavailable", message="injected 503")
    if kind == "timeout":
        return Reply(delay_s=timeout_delay_s)
    if kind == "garbage":
        return Garbage()
    if kind == "reset":
        return Drop(after_chunks=0)
    if kind == "first_drop":
        return Drop(after_chunks=1, content=EIGHT)
    if kind == "early_error":
        return FailMidStream(after_chunks=2, message="injected mid-stream error")
    if kind == "truncate":
        return Truncate(after_chunks=3, content=EIGHT)
    if kind == "stall":
        return Reply(chunk_delay_s=timeout_delay_s)
    if kind == "late_drop":
        return Drop(after_chunks=7, content=EIGHT)
    raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULTS)}")


def chooser(
    fail_rate: float, faults: list[str], timeout_delay_s: float, seed: int, reply_delay_s: float = 0.0
) -> Callable[[], Behaviour]:
    rng = random.Random(seed)

    def choose() -> Behaviour:
        if rng.random() < fail_rate:
            return fault(rng.choice(faults), timeout_delay_s)
        return Reply(delay_s=reply_delay_s)

    return choose


@contextmanager
def run_fault_upstream(
    port: int,
    *,
    fail_rate: float = 0.0,
    faults: str = ",".join(FAULTS),
    timeout_delay_s: float = 3.0,
    seed: int = 1,
    reply_delay_s: float = 0.0,
) -> Iterator[str]:
    """Start this module as a child process on ``port``; yields its base URL (``.../v1``)."""
    command = [sys.executable, __file__, "--port", str(port), "--fail-rate", str(fail_rate)]
    command += ["--faults", faults, "--timeout-delay-s", str(timeout_delay_s), "--seed", str(seed)]
    command += ["--reply-delay-s", str(reply_delay_s)]
    # stderr dropped: uvicorn logs a traceback for every scripted connection reset.
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True, text=True
    )
    try:
        assert process.stdout is not None
        ready = process.stdout.readline().split()
        if ready[:1] != ["ready"]:
            raise RuntimeError(f"fault upstream did not start (exit {process.poll()})")
        yield ready[1]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument(
        "--faults", default=",".join(FAULTS), help="comma-separated subset of: " + ",".join(FAULTS)
    )
    parser.add_argument("--timeout-delay-s", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--reply-delay-s", type=float, default=0.0, help="before a normal reply: faults then finish first"
    )
    parser.add_argument("--api-key", default="sk-up")
    args = parser.parse_args()
    faults = [f for f in args.faults.split(",") if f]
    for kind in faults:
        fault(kind, args.timeout_delay_s)  # refuse a typo before serving
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    choose = chooser(args.fail_rate, faults, args.timeout_delay_s, args.seed, args.reply_delay_s)
    with run_openai_standin(api_key=args.api_key, unscripted=choose, record=False, port=args.port) as standin:
        print(f"ready {standin.base_url}", flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
