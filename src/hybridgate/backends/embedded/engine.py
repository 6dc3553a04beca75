"""The embedded backend's engine process: llama.cpp runs here, apart from the gateway.

Part of the ``embedded`` backend (layer 3 of the flow). ``python -m
hybridgate.backends.embedded.engine '<settings JSON>'`` loads the GGUF and then serves jobs, one
at a time, in the order they arrive. A native crash in llama.cpp (a grammar it cannot parse, a
bug) kills this process only; the gateway answers the request in flight with an error and starts
a new engine (``process.EngineProcess``).

The protocol is one JSON object per line. stdin carries ``{"op": "generate", "id", "messages",
"sampling", "stream"}`` and ``{"op": "cancel", "id"}``; stdout carries ``{"ready": load_s}`` (or
``{"fatal": message}``) once, then per job ``{"id", "text", "logprobs"}`` pieces when streaming and
one ``{"id", "outcome": {...}}`` or ``{"id", "error": {...}}``. Anything else the process prints
goes to stderr: file descriptor 1 is pointed there, so llama.cpp cannot corrupt the protocol.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import orjson

from hybridgate.backends.embedded.llama import LocalModel, Sampling
from hybridgate.errors import RequestError
from hybridgate.types import Json


class _Writer:
    """Whole lines to the gateway, from any thread."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out, self._lock = out, threading.Lock()

    def send(self, message: Json) -> None:
        line = orjson.dumps(message) + b"\n"
        with self._lock:
            self._out.write(line)
            self._out.flush()


def _read(source: IO[bytes], jobs: queue.Queue[Json | None], cancels: dict[int, threading.Event]) -> None:
    """stdin -> jobs and cancellations; EOF (the gateway went away) ends the process."""
    for line in source:
        message = orjson.loads(line)
        if message.get("op") == "generate":
            cancels[message["id"]] = threading.Event()
            jobs.put(message)
        elif message.get("op") == "cancel" and (event := cancels.get(message["id"])) is not None:
            event.set()
    jobs.put(None)


def _run(model: LocalModel, job: Json, cancelled: threading.Event, writer: _Writer) -> None:
    ident = job["id"]

    def on_text(text: str, logprobs: list[Json]) -> None:
        writer.send({"id": ident, "text": text, "logprobs": logprobs})

    try:
        if cancelled.is_set():  # abandoned while it waited
            raise RequestError("cancelled")
        writer.send({"id": ident, "start": True})
        sampling = Sampling(**{**job["sampling"], "stops": tuple(job["sampling"]["stops"])})
        started = time.perf_counter()
        outcome = model.generate(
            model.prompt(job["messages"]), sampling, cancelled, on_text if job["stream"] else None
        )
    except RequestError as exc:
        writer.send(
            {
                "id": ident,
                "error": {"kind": "request", "message": exc.message, "param": exc.param, "code": exc.code},
            }
        )
    except (RuntimeError, ValueError, OSError) as exc:
        writer.send({"id": ident, "error": {"kind": "backend", "message": str(exc)}})
    else:
        # engine_s: the job's time in here, so a bench can tell it from the cost of the boundary
        writer.send(
            {"id": ident, "outcome": dataclasses.asdict(outcome), "engine_s": time.perf_counter() - started}
        )


def serve(settings: Json, source: IO[bytes], writer: _Writer) -> None:
    """Load the model, say so, then run jobs until stdin closes."""
    started = time.perf_counter()
    try:
        model = LocalModel(Path(settings["model_path"]), settings["n_ctx"], settings["n_threads"])
    except (ValueError, RuntimeError, OSError) as exc:
        writer.send({"fatal": f"could not load {settings['model_path']}: {exc}"})
        return
    writer.send({"ready": time.perf_counter() - started})
    jobs: queue.Queue[Json | None] = queue.Queue()
    cancels: dict[int, threading.Event] = {}
    threading.Thread(target=_read, args=(source, jobs, cancels), daemon=True).start()
    while (job := jobs.get()) is not None:
        _run(model, job, cancels[job["id"]], writer)
        cancels.pop(job["id"], None)
    model.close()


def main(argv: list[str]) -> None:
    settings: Any = orjson.loads(argv[1])
    protocol = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints and native logs go to stderr, never into the protocol
    sys.stdout = sys.stderr
    serve(settings, sys.stdin.buffer, _Writer(protocol))


if __name__ == "__main__":
    main(sys.argv)
