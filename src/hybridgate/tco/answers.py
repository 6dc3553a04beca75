"""The inputs of ``hybridgate decide``: an answers file (TOML) and, optionally, an eval report.

Offline. The answers file has one table per step of the framework (see docs/tco.md); keys are
checked like the gateway config (unknown keys are errors). The eval report is the JSON the eval
runner writes, ``{"routes": {ROUTE: {"pass": N, "soft": N, "fail": N, ...}}}``. Loading only
validates; the decision itself is made in ``tco.decide``.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hybridgate.config import describe_validation_error
from hybridgate.tco.model import parse_tokens


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataAnswers(_Strict):
    """Step 1. ``pii``: none, episodic (now and then, e.g. a name in a ticket) or systemic."""

    can_leave_network: bool
    pii: Literal["none", "episodic", "systemic"] = "none"


class QualityAnswers(_Strict):
    """Step 2. ``bar`` is the pass rate the open-weights tier must reach on your eval set."""

    bar: float = Field(default=0.9, ge=0, le=1)
    open_weights_meet_bar: bool | None = None  # used when no eval report covers a local route
    local_routes: list[str] = ["local"]


class VolumeAnswers(_Strict):
    """Step 3. Unset values come from the ledger when there is one."""

    daily_tokens: float | None = Field(default=None, ge=0)
    shape: Literal["steady", "bursty"] | None = None
    avg_context_tokens: int | None = Field(default=None, ge=0)
    blended_price: float | None = Field(default=None, ge=0)  # $ per million tokens
    selfhost_monthly: float = Field(default=8000.0, ge=0)  # all-in $ per month
    # RAG: chunks in the corpus, how often the whole corpus is re-embedded, tokens per chunk.
    corpus_chunks: int | None = Field(default=None, ge=0)
    reembeds_per_month: float = Field(default=1.0, ge=0)
    chunk_tokens: int = Field(default=500, ge=1)
    embed_price: float = Field(default=0.02, ge=0)  # $ per million tokens

    @field_validator("daily_tokens", mode="before")
    @classmethod
    def _volume(cls, value: Any) -> Any:
        return parse_tokens(value) if isinstance(value, str) else value


class OpsAnswers(_Strict):
    """Step 4. Unanswered counts as "no": running GPUs without either is the risky default."""

    gpu_oncall: bool | None = None
    version_pinning: bool | None = None


class FinetuneAnswers(_Strict):
    """Step 5. ``weights``: you need to train the model; ``prompting``: examples in the prompt do."""

    need: Literal["none", "prompting", "weights"] = "none"


class Answers(_Strict):
    data: DataAnswers
    quality: QualityAnswers = QualityAnswers()
    volume: VolumeAnswers = VolumeAnswers()
    ops: OpsAnswers = OpsAnswers()
    finetune: FinetuneAnswers = FinetuneAnswers()


def parse_answers(data: dict[str, Any], source: str = "answers") -> Answers:
    try:
        return Answers.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"{source}: {describe_validation_error(exc)}") from exc


def load_answers(path: str | Path) -> Answers:
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text())
    except FileNotFoundError as exc:
        raise ValueError(f"answers file {file} not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{file}: not valid TOML: {exc}") from exc
    return parse_answers(data, str(file))


@dataclass(frozen=True)
class RouteScore:
    passed: int
    soft: int
    failed: int

    @property
    def total(self) -> int:
        return self.passed + self.soft + self.failed

    @property
    def pass_rate(self) -> float | None:
        """Strict passes over all cases; a soft pass (partly right) does not count."""
        return self.passed / self.total if self.total else None


def parse_eval_report(data: Any, source: str = "eval report") -> dict[str, RouteScore]:
    routes = data.get("routes") if isinstance(data, dict) else None
    if not isinstance(routes, dict):
        raise ValueError(f'{source}: expected {{"routes": {{ROUTE: {{"pass", "soft", "fail"}}}}}}')
    scores = {}
    for route, counts in routes.items():
        try:
            values = [int(counts.get(key, 0)) for key in ("pass", "soft", "fail")]
        except (AttributeError, TypeError, ValueError) as exc:
            raise ValueError(f"{source}: route '{route}' needs integer pass/soft/fail counts") from exc
        if min(values) < 0:
            raise ValueError(f"{source}: route '{route}' has a negative count")
        scores[str(route)] = RouteScore(*values)
    return scores


def load_eval_report(path: str | Path) -> dict[str, RouteScore]:
    file = Path(path)
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError as exc:
        raise ValueError(f"eval report {file} not found") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{file}: not valid JSON: {exc}") from exc
    return parse_eval_report(data, str(file))
