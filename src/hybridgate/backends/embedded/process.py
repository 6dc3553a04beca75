"""The gateway's side of the embedded engine process: start it, talk to it, restart it when it dies.

Part of the ``embedded`` backend (layer 3 of the flow). One ``EngineProcess`` per embedded backend
owns one ``python -m hybridgate.backends.embedded.engine`` child (see that module for the line
protocol). Jobs are written to its stdin; a reader thread routes each line of its stdout to the
job it belongs to, on that job's event loop. When the child exits (a native crash: SIGSEGV,
SIGABRT), every job in flight ends with ``EngineCrashedError`` and a new child is started; the
gateway and every other request keep going. The child runs in its own session, so a Ctrl-C meant
for the gateway does not reach it; it exits when its stdin closes.

Threads, not an asyncio subprocess: the process outlives any one event loop (tests run one per
test), as the model did when it lived on a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import select
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncGenerator
from dataclasses import dataclass

import orjson

from hybridgate.errors import BackendError, EngineCrashedError, RequestError
from hybridgate.types import Json

# How often a job that had not started yet is sent again after its engine died.
_RESUBMITS = 2
# How long a new engine may take to say it has loaded its model.
START_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class _Call:
    loop: asyncio.AbstractEventLoop
    replies: asyncio.Queue[Json]
    process: subprocess.Popen[bytes]

    def deliver(self, message: Json) -> None:
        with contextlib.suppress(RuntimeError):  # the caller's loop is gone: nobody is listening
            self.loop.call_soon_threadsafe(self.replies.put_nowait, message)


class EngineProcess:
    """The child process that runs llama.cpp for backend ``name``."""

    def __init__(self, name: str, settings: Json) -> None:
        self.name = name
        self._settings = settings
        self._lock = threading.Lock()  # the current process, the calls, whole lines on stdin
        self._spawning = threading.Lock()  # one start at a time (loading takes a while)
        self._process: subprocess.Popen[bytes] | None = None
        self._calls: dict[int, _Call] = {}
        self._ids = itertools.count(1)
        self._closed = False
        self._reader: threading.Thread | None = None
        self.load_s: float | None = None  # how long the last start took to load the model
        self.restarts = 0  # children started after one died

    @property
    def loading(self) -> bool:
        """An engine is starting and loading its model right now (``/readyz`` waits for it)."""
        return self._spawning.locked()

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def in_flight(self) -> int:
        """Jobs sent to the engine and not finished yet (running or queued there)."""
        return len(self._calls)

    async def start(self) -> None:
        """Start the child and wait until its model is loaded (no-op when it is running)."""
        await asyncio.to_thread(self._running)

    async def run(self, job: Json) -> AsyncGenerator[Json, None]:
        """The child's messages about ``job``: text pieces, then its outcome (errors are raised).

        A job still queued when its engine died never ran there: it is sent to the new engine."""
        for attempt in range(_RESUBMITS + 1):
            ident, call = await self._submit(job)
            finished = started = False
            try:
                while True:
                    message = await call.replies.get()
                    if "start" in message:
                        started = True
                    elif "exit" in message and not started and attempt < _RESUBMITS:
                        finished = True
                        break  # it was waiting behind the job that crashed the engine
                    elif "outcome" in message:
                        finished = True
                        yield message
                        return
                    elif "error" in message or "exit" in message:
                        finished = True
                        raise self._error(message)
                    else:
                        yield message
            finally:
                self._forget(ident, call, cancel=not finished)

    async def _submit(self, job: Json) -> tuple[int, _Call]:
        process = await asyncio.to_thread(self._running)
        ident = next(self._ids)
        call = _Call(asyncio.get_running_loop(), asyncio.Queue(), process)
        with self._lock:
            self._calls[ident] = call
            try:
                if self._process is not process:
                    raise self._crashed(process.poll())
                self._write(process, {"op": "generate", "id": ident, **job})
            except EngineCrashedError:  # it died meanwhile; the job never started: run() resends it
                call.deliver({"exit": process.poll() or -1})
        return ident, call

    def _forget(self, ident: int, call: _Call, *, cancel: bool) -> None:
        with self._lock:
            self._calls.pop(ident, None)
            if cancel:
                with contextlib.suppress(BackendError):
                    self._write(call.process, {"op": "cancel", "id": ident})

    async def aclose(self) -> None:
        await asyncio.to_thread(self._close)

    # -- on threads ----------------------------------------------------------------------------

    def _running(self) -> subprocess.Popen[bytes]:
        with self._spawning:
            process = self._process
            if process is not None and process.poll() is None:
                return process
            if self._closed:
                raise BackendError(f"backend '{self.name}' is closed")
            process = self._spawn()
            with self._lock:
                self._process = process
            return process

    def _spawn(self) -> subprocess.Popen[bytes]:
        command = [
            sys.executable,
            "-m",
            "hybridgate.backends.embedded.engine",
            orjson.dumps(self._settings).decode(),
        ]
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True
        )
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT_S)
        first = (
            process.stdout.readline() if ready else b'{"fatal": "the engine did not load its model in time"}'
        )
        hello = (
            orjson.loads(first) if first else {"fatal": f"the engine exited ({_describe(process.wait())})"}
        )
        if "ready" not in hello:
            process.kill()
            process.wait()
            _close_pipes(process)
            raise BackendError(f"backend '{self.name}': {hello.get('fatal')}")
        self.load_s = float(hello["ready"])
        self._reader = threading.Thread(
            target=self._read, args=(process,), name=f"hybridgate-{self.name}-engine", daemon=True
        )
        self._reader.start()
        return process

    def _read(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            try:
                message = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # not the protocol (the engine points its stdout elsewhere; never expected)
            if (call := self._calls.get(message.get("id", -1))) is not None:
                call.deliver(message)
        code = process.wait()
        with self._lock:
            if self._process is process:
                self._process = None
            dead = [call for call in self._calls.values() if call.process is process]
            _close_pipes(process)
        for call in dead:  # every job in flight died with the engine
            call.deliver({"exit": code})
        if not self._closed and code != 0:
            self.restarts += 1
            with contextlib.suppress(BackendError, OSError):
                self._running()

    def _write(self, process: subprocess.Popen[bytes], message: Json) -> None:
        """One line to the child; the caller holds ``_lock``."""
        if process.stdin is None or process.poll() is not None:
            raise self._crashed(process.returncode)
        try:
            process.stdin.write(orjson.dumps(message) + b"\n")
            process.stdin.flush()
        except (BrokenPipeError, ConnectionResetError, ValueError) as exc:
            raise self._crashed(process.poll()) from exc

    def _close(self) -> None:
        with self._lock:
            self._closed = True
            process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            if process.stdin is not None:
                process.stdin.close()
        try:
            process.wait(timeout=5)  # it ends after the job it is running
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self._reader is not None:
            self._reader.join(timeout=10)  # it closes the pipes

    def _crashed(self, code: int | None) -> EngineCrashedError:
        what = f"exited ({_describe(code)})" if code is not None else "went away"
        return EngineCrashedError(
            f"backend '{self.name}': the llama.cpp engine process {what} while serving this request; "
            "it is being restarted"
        )

    def _error(self, message: Json) -> BackendError | RequestError:
        if "exit" in message:
            return self._crashed(message["exit"])
        error = message["error"]
        if error["kind"] == "request":
            request_error = RequestError(error["message"], param=error.get("param"))
            request_error.code = error.get("code")
            return request_error
        return BackendError(f"llama.cpp failed in backend '{self.name}': {error['message']}")


def _close_pipes(process: subprocess.Popen[bytes]) -> None:
    for pipe in (process.stdin, process.stdout):
        with contextlib.suppress(OSError):
            if pipe is not None:
                pipe.close()


def _describe(code: int) -> str:
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"status {code}"
