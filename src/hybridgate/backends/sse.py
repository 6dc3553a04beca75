"""Reading an upstream's server-sent-events body: raw network reads in, complete lines out.

Step 3 of the flow, used by the cloud backends while they stream. Works on bytes, one network
read at a time, so a read carrying many events costs one split instead of a decode and a call per
line. Lines end in ``\\n``, ``\\r\\n`` or ``\\r``, as the SSE format allows. Interpreting the events
is each backend's job (``EventSplitter`` only groups ``event:`` and ``data:`` lines into events);
nothing here does I/O.
"""

from __future__ import annotations

__all__ = ["EventSplitter", "LineSplitter"]


class LineSplitter:
    """Splits a body into lines as it arrives, holding back a line until its end has come."""

    def __init__(self) -> None:
        self._tail = b""

    def feed(self, data: bytes) -> list[bytes]:
        """The lines that ``data`` completes, without their line endings."""
        if self._tail:
            data, self._tail = self._tail + data, b""
        lines = data.splitlines(keepends=True)
        # A last line without "\n" is unfinished, or ends in a "\r" whose "\n" is still on its way.
        if lines and not lines[-1].endswith(b"\n"):
            self._tail = lines.pop()
        return [line.rstrip(b"\r\n") for line in lines]

    def end(self) -> list[bytes]:
        """The last line, when the body ended without a line ending."""
        tail, self._tail = self._tail, b""
        return [tail.rstrip(b"\r\n")] if tail else []


class EventSplitter:
    """Groups a body's lines into events: the ``event:`` name and the ``data:`` lines joined.

    An event ends at a blank line. ``:`` comment lines (keep-alives) and unknown fields are
    ignored, as the SSE format specifies.
    """

    def __init__(self) -> None:
        self._lines = LineSplitter()
        self._name = ""
        self._data: list[bytes] = []

    def feed(self, data: bytes) -> list[tuple[str, bytes]]:
        """The events that ``data`` completes, as (name, data) pairs."""
        return self._events(self._lines.feed(data))

    def end(self) -> list[tuple[str, bytes]]:
        """The events still held when the body ends, an unterminated last one included."""
        events = self._events(self._lines.end())
        if self._data:
            events.append(self._dispatch())
        return events

    def _events(self, lines: list[bytes]) -> list[tuple[str, bytes]]:
        events = []
        for line in lines:
            if line.startswith(b"event:"):
                self._name = line[6:].strip().decode(errors="replace")
            elif line.startswith(b"data:"):
                self._data.append(line[5:].removeprefix(b" "))
            elif not line and self._data:
                events.append(self._dispatch())
        return events

    def _dispatch(self) -> tuple[str, bytes]:
        event = (self._name, b"\n".join(self._data))
        self._name, self._data = "", []
        return event
