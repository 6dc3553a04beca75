"""A streamed answer on its way to the caller: chunks out, one ledger row and a cache write when done.

The chunks come from the cascade's ``StartedStream`` (a live upstream) or, on a cache hit, from
the cached completion replayed as chunks. Placeholders the privacy screen put in the prompt are
restored on the way out; the answer is folded back into one completion for the cache only after
the stream ended cleanly.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Protocol

from hybridgate.errors import GatewayError
from hybridgate.pipeline.recorder import Ending, Recorder
from hybridgate.privacy.restore import ChunkRestorer
from hybridgate.router.rules import estimate_prompt_tokens as prompt_token_estimate
from hybridgate.types import ChatResponse, Decision, Json, Usage
from hybridgate.wire.assembly import StreamAssembler

if TYPE_CHECKING:
    from hybridgate.cache import Lookup
    from hybridgate.pipeline.trace import Trace

CLIENT_CLOSED = 499  # nginx's convention for "the client hung up before the answer was complete"


class Recording(Protocol):
    """What a stream needs of its pipeline when it ends: the ledger row (its ``recorder``), the
    cache write and outcome sampling (``Pipeline`` is one; a Protocol so this module does not
    import the pipeline's)."""

    @property
    def recorder(self) -> Recorder: ...

    def store(self, lookup: Lookup | None, trace: Trace, response: ChatResponse, cost: float) -> None: ...

    def wants_answer(self, route: str) -> bool: ...

    def graded(self, trace: Trace, decision: Decision, body: Json | None) -> None: ...


class PipelineStream:
    """An answer being streamed: yields OpenAI chunks, records the ledger row when done."""

    def __init__(
        self,
        pipeline: Recording,
        trace: Trace,
        decision: Decision,
        first: Json,
        rest: AsyncGenerator[Json, None],
        lookup: Lookup | None = None,
    ) -> None:
        self._pipeline = pipeline
        self.trace = trace
        self.decision = decision
        self._first = first
        self._rest = rest
        self._lookup = lookup  # set: store the answer once it has streamed whole
        self.usage = Usage()
        self.cost_usd = 0.0
        self._started = False  # chunks() was entered: it records the row and frees the upstream

    @property
    def backend(self) -> str:
        return self.trace.backend

    @property
    def cache(self) -> str | None:
        return self.trace.cache

    async def abandon(self) -> None:
        """The caller left before the stream was read at all (its HTTP response never started):
        free the upstream and write the request's row (499), which also settles its reservation.
        Does nothing once ``chunks`` has started: it does both itself."""
        if self._started:
            return
        self._started = True
        try:
            await self._rest.aclose()
        finally:
            ending = Ending(self.usage, CLIENT_CLOSED, "client_closed", stream=True)
            self._pipeline.recorder.record(self.trace, ending)

    async def chunks(self) -> AsyncIterator[Json]:
        self._started = True
        trace, status = self.trace, CLIENT_CLOSED
        error_type: str | None = "client_closed"
        reported: str | None = None
        fingerprint: str | None = None
        sampled = self._pipeline.wants_answer(self.decision.route)
        assembler = StreamAssembler() if self._lookup is not None or sampled else None
        served = 0  # content chunks sent: the tokens served, if the upstream never says
        try:
            async for chunk in self._restored():
                if _has_output(chunk):
                    served += 1
                    if trace.ttft_ms is None:
                        trace.ttft_ms = (time.perf_counter() - trace.ctx.started_perf) * 1000
                if (usage := chunk.get("usage")) and trace.hit is None:
                    self.usage = Usage.from_openai(usage)
                note_answer(trace, chunk)
                reported = chunk.get("model") or reported
                fingerprint = chunk.get("system_fingerprint") or fingerprint
                if assembler is not None:
                    assembler.add(chunk)
                yield chunk
            status, error_type = 200, None
        except GatewayError as exc:
            status, error_type = exc.status_code, exc.type
            raise
        except Exception as exc:  # a bug or an unmapped failure: still an error event, not a cut
            error = GatewayError(f"the stream failed: {type(exc).__name__}")
            status, error_type = error.status_code, error.type
            raise error from exc
        finally:
            await self._rest.aclose()  # frees the upstream connection if we stopped early
            if status != 200 and self.usage.total_tokens == 0 and served and trace.request:
                # the upstream's usage never came: the tokens served, and the prompt estimated
                self.usage = Usage(prompt_token_estimate(trace.request), served)
            ending = Ending(self.usage, status, error_type, reported, fingerprint, stream=True)
            self.cost_usd = self._pipeline.recorder.record(trace, ending)
        if assembler is not None and self._lookup is not None:
            self._pipeline.store(self._lookup, trace, assembler.response(), self.cost_usd)
        if status == 200 and trace.hit is None:
            self._pipeline.graded(trace, self.decision, assembler.response().body if assembler else None)

    async def _restored(self) -> AsyncIterator[Json]:
        redactions = self.trace.redactions_for(self.trace.served)
        restorer = ChunkRestorer(redactions) if redactions is not None else None
        last = self._first
        yield restorer.feed(last) if restorer else last
        async for chunk in self._rest:
            last = chunk
            yield restorer.feed(chunk) if restorer else chunk
        if restorer and (tail := restorer.flush_chunk(last)):
            yield tail


async def iterate(chunks: list[Json]) -> AsyncGenerator[Json, None]:
    """Chunks already in hand (a cached answer) as the async generator a live stream is."""
    for chunk in chunks:
        yield chunk


def note_answer(trace: Trace, body: Json) -> None:
    """What the span says about the answer: its id, finish reasons, text (when kept)."""
    trace.response_id = str(body["id"]) if body.get("id") else trace.response_id
    for choice in body.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        if reason := choice.get("finish_reason"):
            trace.finish_reasons.append(str(reason))
        part = (choice.get("message") or choice.get("delta") or {}).get("content")
        if trace.answer is not None and isinstance(part, str):
            trace.answer.append(part)


def _has_output(chunk: Json) -> bool:
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if delta.get("content") or delta.get("tool_calls"):
            return True
    return False
