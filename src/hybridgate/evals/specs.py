"""What a golden case expects: one pydantic model per grader, selected by ``grader = "..."``.

Offline tooling (``hybridgate eval``); nothing on the request path imports this. Pure data and
validation: a pattern that does not compile or a JSON schema that is not a schema is rejected when
the golden file is loaded, so a typo fails before any model is called, not halfway through a run.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from hybridgate.types import Json


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


class Exact(Spec):
    """The whole answer equals ``value`` (or one of several), ignoring case, spacing and a final
    full stop. An answer that starts with it and then rambles on is ``soft``."""

    grader: Literal["exact"]
    value: str | list[str]
    case_sensitive: bool = False

    def values(self) -> list[str]:
        return _as_list(self.value)


class Contains(Spec):
    """Every (``mode="all"``) or some (``"any"``) of ``value`` appears in the answer, and nothing in
    ``absent`` does. Some-but-not-all is ``soft``; anything from ``absent`` is ``fail``."""

    grader: Literal["contains"]
    value: str | list[str] = []
    absent: list[str] = []
    mode: Literal["all", "any"] = "all"
    case_sensitive: bool = False

    def values(self) -> list[str]:
        return _as_list(self.value)


class Regex(Spec):
    grader: Literal["regex"]
    pattern: str
    ignore_case: bool = False
    fullmatch: bool = False

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
        return pattern


class JsonSchema(Spec):
    """The answer is JSON valid against ``schema``; ``expected`` fields must hold these values.
    JSON that parses only after repair (a code fence, a trailing comma) is ``soft``."""

    grader: Literal["json_schema"]
    json_schema: Json = Field(alias="schema")
    expected: Json = {}

    @field_validator("json_schema")
    @classmethod
    def _is_schema(cls, schema: Json) -> Json:
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise ValueError(f"not a JSON schema: {exc.message}") from exc
        return schema


class Numeric(Spec):
    """The last number in the answer is within ``tolerance`` of ``value``. The right number
    somewhere else in the answer (not last) is ``soft``."""

    grader: Literal["numeric"]
    value: float
    tolerance: float = Field(default=0.0, ge=0)


class ToolCall(Spec):
    """The answer calls tool ``name``; each key of ``arguments`` must have that value (other
    arguments are free). The right tool with wrong arguments is ``soft``."""

    grader: Literal["tool_call"]
    name: str
    arguments: dict[str, Any] = {}


class Refusal(Spec):
    """The model declines (``should_refuse = true``) or, with ``false``, answers without declining."""

    grader: Literal["refusal"]
    should_refuse: bool = True


class Leak(Spec):
    """Nothing secret reaches the answer: no ``canary`` string (case, spacing and punctuation
    ignored), and no PII the privacy detectors find (``pii = "from_prompt"``: a value that is
    also in the conversation; ``"any"``: any PII at all; ``"off"``). With ``should_refuse`` set,
    the model must also decline (or answer)."""

    grader: Literal["leak"]
    canary: str | list[str] = []
    pii: Literal["from_prompt", "any", "off"] = "from_prompt"
    entities: list[str] | None = None  # PII types to look for; default: every pattern type
    should_refuse: bool | None = None

    def canaries(self) -> list[str]:
        return _as_list(self.canary)


class Judge(Spec):
    """An LLM judge grades the answer against ``rubric`` (and ``reference``, if given), through
    ``route`` (default: the golden file's ``defaults.judge_route``)."""

    grader: Literal["judge"]
    rubric: str = Field(min_length=1)
    reference: str | None = None
    route: str | None = None
    max_tokens: int = Field(default=64, ge=1)
    # A safety case graded by the judge: PASS means the model did what the rubric expects, which
    # is declining (true) or answering (false); the verdict then counts in the refusal rates.
    should_refuse: bool | None = None


GraderSpec = Annotated[
    Exact | Contains | Regex | JsonSchema | Numeric | ToolCall | Refusal | Leak | Judge,
    Field(discriminator="grader"),
]
GRADERS = (
    "exact",
    "contains",
    "regex",
    "json_schema",
    "numeric",
    "tool_call",
    "refusal",
    "leak",
    "judge",
)
