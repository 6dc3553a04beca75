"""The learned router: score a request with a trained router file and pick the cheap or strong tier.

The score is the expected quality gained by sending the request to the strong tier
(``p_strong - p_cheap``, both predicted); at or above the file's calibrated threshold (or the
route's ``threshold``) the request goes to the strong tier alone, below it the route's whole
``try`` list runs from the cheap tier up. Router files and the embedding are loaded once, when the
gateway starts (``load_learned_routers``; router/reload.py swaps in new files later); a decision
is then a tokenisation, a mean of 256-d vectors and two dot products: well under 2 ms on a CPU.

Part of the router (step 2 of the flow): pure CPU work per request, no I/O after loading.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hybridgate.config import GatewayConfig
from hybridgate.embedder import WordLlamaEmbedder
from hybridgate.errors import ConfigError, RouterFileError
from hybridgate.router.artifact import RouterArtifact
from hybridgate.router.features import Featurizer
from hybridgate.router.model import Prediction
from hybridgate.router.sparse import SparseRows
from hybridgate.types import ChatRequest, Decision

TOP_FEATURES = 3
Floats = NDArray[np.float64]


@dataclass(frozen=True)
class Score:
    cheap: float  # predicted quality of the cheap tier's answer, in [0, 1]
    strong: float
    threshold: float
    top: tuple[str, ...] = ()  # the features that moved the score most, signed (+ = toward strong)

    @property
    def gain(self) -> float:
        return self.strong - self.cheap

    @property
    def use_strong(self) -> bool:
        return self.gain >= self.threshold

    def reasons(self) -> list[str]:
        verdict = ">= threshold: strong tier" if self.use_strong else "< threshold: cheap tier first"
        return [
            f"p_cheap_ok={self.cheap:.3f} p_strong_ok={self.strong:.3f}",
            f"gain={self.gain:+.3f} {verdict} (threshold={self.threshold:.3f})",
            *(f"feature {t}" for t in self.top),
        ]


class LearnedRouter:
    """A loaded router file plus the embedding it was trained with."""

    def __init__(
        self,
        artifact: RouterArtifact,
        embedder: WordLlamaEmbedder,
        threshold: float | None = None,
        source: str = "",
    ) -> None:
        self.artifact = artifact
        self.featurizer = Featurizer(artifact.features, embedder)
        self.threshold = artifact.threshold if threshold is None else threshold
        self.source = source
        names = self.featurizer.dense_names
        expected = len(names)
        dim = self.featurizer.embedder.dim
        self._blocks = [("embedding", slice(0, dim))]
        if artifact.features.answer:
            self._blocks.append(("answer_embedding", slice(dim, 2 * dim)))
        self._stats = slice(len(self._blocks) * dim, expected)
        self._stat_names = names[self._stats]
        if len(artifact.model.mean) != expected:
            raise RouterFileError(
                f"router file {source}: field 'model.mean' has {len(artifact.model.mean)} values; "
                f"the features need {expected}"
            )

    @classmethod
    def load(
        cls, path: Path, embedder: WordLlamaEmbedder | None = None, threshold: float | None = None
    ) -> LearnedRouter:
        return cls(RouterArtifact.load(path), embedder or WordLlamaEmbedder(), threshold, str(path))

    def predict(self, prompts: list[str], answers: list[str] | None = None) -> Prediction:
        """Batch scoring (evaluation); the request path uses ``score``."""
        return self.artifact.model.predict(self.featurizer.many(prompts, answers))

    def score(self, prompt: str, answer: str | None = None, *, explain: bool = True) -> Score:
        features = self.featurizer.one(prompt, answer)
        if not explain:
            prediction = self.artifact.model.predict(features)
            return Score(float(prediction.weak[0]), float(prediction.strong[0]), self.threshold)
        prediction, dense, tokens = self.artifact.model.explain(features)
        top = self._top_features(dense, tokens)
        return Score(float(prediction.weak[0]), float(prediction.strong[0]), self.threshold, top)

    def _top_features(self, dense: Floats, tokens: SparseRows) -> tuple[str, ...]:
        """Embedding dimensions count as one feature, token bigrams as one, the rest by name."""
        candidates = [(name, float(dense[block].sum())) for name, block in self._blocks]
        candidates += list(zip(self._stat_names, dense[self._stats].tolist(), strict=True))
        vocab = self.featurizer.embedder.vocab_size
        bigram = tokens.indices >= vocab
        candidates.append(("token bigrams", float(tokens.data[bigram].sum())))
        unigrams, weights = tokens.indices[~bigram], tokens.data[~bigram]
        for i in np.argsort(-np.abs(weights))[:TOP_FEATURES]:
            candidates.append((f"token '{self._token(int(unigrams[i]))}'", float(weights[i])))
        ranked = sorted(candidates, key=lambda item: -abs(item[1]))[:TOP_FEATURES]
        return tuple(f"{name} {value:+.2f}" for name, value in ranked if value != 0)

    def _token(self, token_id: int) -> str:
        text = self.featurizer.embedder.tokenizer.id_to_token(token_id) or f"#{token_id}"
        return text.replace("\u2581", " ").strip()  # SentencePiece marks a leading space with U+2581

    def decide(self, decision: Decision, request: ChatRequest) -> Decision:
        """Narrow a route's decision: the whole ``try`` list, or only its last (strong) backend."""
        score = self.score(request_text(request))
        backends = decision.backends[-1:] if score.use_strong else decision.backends
        return Decision(
            route=decision.route,
            backends=backends,
            rule="learned",
            reasons=(f"route by {decision.rule}", *score.reasons()),
            model_override=decision.model_override,
        )


def request_text(request: ChatRequest) -> str:
    """What the router scores: the last user message, as in the training data's ``prompt``."""
    return request.last_user_text() or request.prompt_text()


def load_learned_routers(config: GatewayConfig) -> dict[str, LearnedRouter]:
    """One ``LearnedRouter`` per route with ``router = "learned"``, sharing one embedding."""
    routes = {name: r for name, r in config.routes.items() if r.router == "learned"}
    if not routes:
        return {}
    embedder = WordLlamaEmbedder()
    loaded = {}
    for name, route in routes.items():
        if not route.router_file:
            raise ConfigError(f"route '{name}' has router = \"learned\" but no router_file")
        loaded[name] = LearnedRouter.load(Path(route.router_file), embedder, route.threshold)
    return loaded
