"""``POST /v1/embeddings``: route, screen, look up per text, embed the misses, record.

The flow beside the chat pipeline: ``request`` parses and checks OpenAI's shape, ``service`` runs
one request through routing, the privacy screen, the per-text cache (``cache/embeddings.py``) and
the embedders (``backends/embeddings.py``), and writes its one ledger row.
"""

from hybridgate.embeddings.request import EmbeddingInput, EmbeddingRequest, inputs_of
from hybridgate.embeddings.service import EmbeddingResult, Embeddings, guard_name

__all__ = ["EmbeddingInput", "EmbeddingRequest", "EmbeddingResult", "Embeddings", "guard_name", "inputs_of"]
