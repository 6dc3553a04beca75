"""The OpenAI-compatible embeddings edge: ``POST /v1/embeddings``.

Parses OpenAI's request, hands it to the embeddings flow, and answers in OpenAI's shape:
``data[].embedding`` as floats or as base64 (little-endian float32, what the official SDKs ask for
by default), ``model``, ``usage``. The decision headers say where it went; ``x-hybridgate-cache``
is ``hit``, ``partial`` (some texts were cached) or ``miss``.
"""

from __future__ import annotations

import base64

import numpy as np
import orjson
from starlette.requests import Request
from starlette.responses import Response

from hybridgate.api.auth import admit
from hybridgate.api.body import parse, read_json
from hybridgate.api.context import context_from
from hybridgate.api.openai import decision_headers
from hybridgate.embeddings import EmbeddingRequest, EmbeddingResult
from hybridgate.errors import GatewayError, ModelNotFoundError
from hybridgate.gateway import Gateway
from hybridgate.types import Json


async def embeddings(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    ctx = context_from(request, "embeddings", gateway.config.environment)
    try:
        limits = await admit(request, gateway, ctx)
        if gateway.embeddings is None:
            raise ModelNotFoundError("embeddings are not configured here: add an [embeddings] section")
        body = parse(EmbeddingRequest, await read_json(request, gateway.config.server.max_body_bytes))
        ctx.cohort = ctx.cohort or body.user
    except GatewayError as exc:
        gateway.pipeline.reject(ctx, exc)
        raise
    result = await gateway.embeddings.embed(body, ctx)
    headers = decision_headers(ctx, result.decision, result.backend, result.cache) | limits
    headers["x-hybridgate-cost-usd"] = f"{result.cost_usd:.8f}"
    answer = render(result, body.encoding_format == "base64")
    return Response(
        orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY),
        media_type="application/json",
        headers=headers,
    )


def render(result: EmbeddingResult, as_base64: bool) -> Json:
    rows = result.vectors.astype("<f4", copy=False)
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": base64.b64encode(row.tobytes()).decode()
            if as_base64
            else row.astype(np.float64).tolist(),
        }
        for i, row in enumerate(rows)
    ]
    usage = {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens}
    return {"object": "list", "data": data, "model": result.model, "usage": usage}
