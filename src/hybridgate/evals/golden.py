"""Golden sets: a TOML file of cases, each a prompt, an expected behaviour and a grader.

Offline tooling (``hybridgate eval`` / ``replay``); never imported by the request path. Loading
validates the whole file up front (unknown keys are errors, as in the gateway config) and reports
every problem with the file, the case id and the field, so a broken case is fixed before a run,
not discovered halfway through it. ``case_request`` turns a case into the ``ChatRequest`` the
pipeline receives. The format is documented in docs/evals.md; examples/golden.toml is a sample.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hybridgate.errors import GoldenFileError
from hybridgate.evals.specs import GRADERS, GraderSpec, JsonSchema
from hybridgate.types import ChatRequest, Json, Message

MAX_PROBLEMS = 20


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Defaults(Strict):
    max_tokens: int = Field(default=64, ge=1)
    temperature: float = Field(default=0.0, ge=0, le=2)
    system: str | None = None
    judge_route: str | None = None


class Tool(Strict):
    description: str = ""
    parameters: Json = {"type": "object", "properties": {}}


class Header(Strict):
    """Everything in the file but the cases, which are validated one by one."""

    name: str = ""
    description: str = ""
    defaults: Defaults = Defaults()
    tools: dict[str, Tool] = {}
    cases: list[Any] = Field(min_length=1)


class Case(Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_.:-]+$")
    tags: list[str] = []
    prompt: str | None = None
    messages: list[Message] | None = None
    system: str | None = None
    tools: list[str] = []
    tool_choice: str | None = None
    # A shorthand ("json_object", or "json_schema" to send the grader's schema) or a full
    # OpenAI response_format object.
    response_format: Literal["json_object", "json_schema"] | Json | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    expect: GraderSpec

    @model_validator(mode="after")
    def _one_input(self) -> Case:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of 'prompt' or 'messages'")
        if self.response_format == "json_schema" and not isinstance(self.expect, JsonSchema):
            raise ValueError('response_format = "json_schema" needs grader = "json_schema"')
        return self


@dataclass(frozen=True)
class GoldenSet:
    path: Path
    name: str
    defaults: Defaults
    tools: dict[str, Tool]
    cases: list[Case]


def load_golden(path: str | Path) -> GoldenSet:
    """Read and validate a golden file; raises ``GoldenFileError`` listing every problem."""
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text())
    except FileNotFoundError as exc:
        raise GoldenFileError(f"golden file {file} not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise GoldenFileError(f"{file}: not valid TOML: {exc}") from exc
    try:
        header = Header.model_validate(data)
    except ValidationError as exc:
        raise GoldenFileError("\n".join(f"{file}: {p}" for p in _problems(exc))) from exc
    cases, problems = _validate_cases(header)
    if problems:
        lines = [f"{file}: {p}" for p in problems[:MAX_PROBLEMS]]
        if len(problems) > MAX_PROBLEMS:
            lines.append(f"... and {len(problems) - MAX_PROBLEMS} more problems")
        raise GoldenFileError("\n".join(lines))
    return GoldenSet(file, header.name or file.stem, header.defaults, header.tools, cases)


def _validate_cases(header: Header) -> tuple[list[Case], list[str]]:
    cases: list[Case] = []
    problems: list[str] = []
    seen: set[str] = set()
    for index, raw in enumerate(header.cases):
        label = _label(raw, index)
        if not isinstance(raw, dict):
            problems.append(f"{label}: a case must be a table ([[cases]])")
            continue
        try:
            case = Case.model_validate(raw)
        except ValidationError as exc:
            problems.extend(f"{label}: {p}" for p in _problems(exc))
            continue
        if case.id in seen:
            problems.append(f"{label}: id: duplicate case id '{case.id}'")
        seen.add(case.id)
        for tool in case.tools:
            if tool not in header.tools:
                known = ", ".join(header.tools) or "none; define them under [tools.NAME]"
                problems.append(f"{label}: tools: unknown tool '{tool}'; defined: {known}")
        cases.append(case)
    return cases, problems


def _label(raw: object, index: int) -> str:
    case_id = raw.get("id") if isinstance(raw, dict) else None
    return f"case '{case_id}' (cases[{index}])" if case_id else f"case cases[{index}] (no id)"


def _problems(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        if loc[:1] == ["expect"] and len(loc) > 2 and loc[1] in GRADERS:
            del loc[1]  # pydantic puts the union's tag (the grader) in the path
        where = ".".join(loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            problems.append(f"{where}: unknown field")
        elif err["type"] in ("union_tag_not_found", "union_tag_invalid"):
            problems.append(f"{where}.grader: missing or unknown; one of {', '.join(GRADERS)}")
        else:
            problems.append(f"{where}: {err['msg']}")
    return problems


def case_request(golden: GoldenSet, case: Case, model: str) -> ChatRequest:
    """The chat request a case sends, addressed to ``model`` (a route name)."""
    system = case.system if case.system is not None else golden.defaults.system
    messages = list(case.messages or [Message(role="user", content=case.prompt)])
    if system and messages[0].role not in ("system", "developer"):
        messages.insert(0, Message(role="system", content=system))
    body: Json = {
        "model": model,
        "messages": messages,
        "max_tokens": case.max_tokens or golden.defaults.max_tokens,
        "temperature": golden.defaults.temperature if case.temperature is None else case.temperature,
    }
    if case.tools:
        body["tools"] = [_tool(name, golden.tools[name]) for name in case.tools]
    if case.tool_choice:
        body["tool_choice"] = case.tool_choice
    if case.response_format is not None:
        body["response_format"] = _response_format(case)
    return ChatRequest.model_validate(body)


def _tool(name: str, tool: Tool) -> Json:
    function = {"name": name, "description": tool.description, "parameters": tool.parameters}
    return {"type": "function", "function": function}


def _response_format(case: Case) -> Json:
    if isinstance(case.response_format, dict):
        return case.response_format
    if case.response_format == "json_schema" and isinstance(case.expect, JsonSchema):
        schema = {"name": case.id.replace(".", "_").replace(":", "_"), "schema": case.expect.json_schema}
        return {"type": "json_schema", "json_schema": schema}
    return {"type": "json_object"}
