"""Outcome files for training and evaluating the learned router: CSV or JSON Lines.

Shape: a ``prompt`` column and one outcome column per model, each ``true``/``false`` or a score
in [0, 1]; optionally ``cost_<model>`` (USD per request) and ``<model>_response`` (that model's
answer, for a cascade verifier). Which columns are the cheap and the strong tier: named by the
caller, else the cheaper by cost columns, else the first and second outcome columns in file order.

Every problem is reported with the file, the column and the data row (1 = the first), e.g.
``data.csv: column 'gpt-4' row 7: 'maybe' is not true/false or a score in [0, 1]``.
Offline only (training, ``router eval``, the benchmark); never imported on the request path.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hybridgate.errors import DataFileError

Floats = NDArray[np.float64]
PROMPT = "prompt"
TRUE = frozenset({"true", "yes"})
FALSE = frozenset({"false", "no"})


@dataclass(frozen=True)
class Outcomes:
    source: str
    prompts: list[str]
    weak_name: str
    strong_name: str
    weak: Floats
    strong: Floats
    weak_cost: Floats | None = None
    strong_cost: Floats | None = None
    answers: list[str] | None = None  # the cheap tier's answers, when an answer column was used

    def __len__(self) -> int:
        return len(self.prompts)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The file's rows as dicts (JSON Lines for .jsonl/.ndjson/.json, else CSV)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise DataFileError(f"{path}: no such file") from exc
    except UnicodeDecodeError as exc:
        raise DataFileError(f"{path}: not UTF-8 text") from exc
    rows = _json_lines(path, text) if path.suffix.lower() in (".jsonl", ".ndjson", ".json") else _csv(text)
    if not rows:
        raise DataFileError(f"{path}: no rows; expected a '{PROMPT}' column and one outcome column per model")
    return rows


def _json_lines(path: Path, text: str) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFileError(f"{path}: line {number} is not JSON: {exc.msg}") from exc
        if not isinstance(row, dict):
            raise DataFileError(f"{path}: line {number} is not a JSON object")
        rows.append(row)
    return rows


def _csv(text: str) -> list[dict[str, Any]]:
    return list(csv.DictReader(text.splitlines(keepends=True)))


def load_outcomes(
    path: Path, weak: str | None = None, strong: str | None = None, answer: str | None = None
) -> Outcomes:
    rows = read_rows(path)
    columns = list(rows[0])
    if PROMPT not in columns:
        raise DataFileError(f"{path}: no '{PROMPT}' column; columns: {', '.join(columns)}")
    weak, strong = choose_models(path, rows, columns, weak, strong)
    for name in (answer,) if answer else ():
        _require(path, columns, name)
    return Outcomes(
        source=str(path),
        prompts=[_text(path, row, PROMPT, i) for i, row in enumerate(rows, start=1)],
        weak_name=weak,
        strong_name=strong,
        weak=outcome_column(path, rows, weak),
        strong=outcome_column(path, rows, strong),
        weak_cost=_cost(path, rows, columns, weak),
        strong_cost=_cost(path, rows, columns, strong),
        answers=[_text(path, r, answer, i) for i, r in enumerate(rows, 1)] if answer else None,
    )


def choose_models(
    path: Path, rows: list[dict[str, Any]], columns: list[str], weak: str | None, strong: str | None
) -> tuple[str, str]:
    for name in (weak, strong):
        if name is not None:
            _require(path, columns, name)
    if weak and strong:
        return weak, strong
    candidates = [c for c in columns if is_outcome_column(c)]
    for name in candidates:
        try:
            outcome_column(path, rows, name)
        except DataFileError as exc:
            # Guessing the models from a file with other columns: say how to stop guessing.
            raise DataFileError(f"{exc.message} (name the model columns with --weak and --strong)") from exc
    rest = [c for c in candidates if c not in (weak, strong)]
    if len(rest) + (weak is not None) + (strong is not None) < 2:
        raise DataFileError(
            f"{path}: need two outcome columns (cheap and strong model); "
            f"found: {', '.join(candidates) or 'none'}"
        )
    if weak is None and strong is None and all(f"cost_{c}" in columns for c in rest[:2]):
        a, b = rest[:2]
        mean = {c: float(np.mean(_numbers(path, rows, f"cost_{c}"))) for c in (a, b)}
        return (a, b) if mean[a] <= mean[b] else (b, a)
    if weak is None and strong is None:
        return rest[0], rest[1]
    return (weak, rest[0]) if weak is not None else (rest[0], strong or rest[1])


def is_outcome_column(name: str) -> bool:
    return name != PROMPT and not name.startswith("cost_") and not name.endswith("_response")


def outcome_column(path: Path, rows: list[dict[str, Any]], name: str) -> Floats:
    values = np.empty(len(rows))
    for i, row in enumerate(rows):
        values[i] = parse_outcome(path, name, row.get(name), i + 1)
    return values


def parse_outcome(path: Path, column: str, value: Any, line: int) -> float:
    """A bool, or a score in [0, 1], from JSON or CSV text."""
    where = f"{path}: column '{column}' row {line}"
    if isinstance(value, bool):
        return float(value)
    if value is None or value == "":
        raise DataFileError(f"{where}: missing value; outcomes must be true/false or a score in [0, 1]")
    if isinstance(value, str) and value.strip().lower() in TRUE | FALSE:
        return float(value.strip().lower() in TRUE)
    try:
        score = float(value)
    except (TypeError, ValueError) as exc:
        raise DataFileError(f"{where}: {value!r} is not true/false or a score in [0, 1]") from exc
    if not 0.0 <= score <= 1.0:  # also rejects NaN
        raise DataFileError(f"{where}: {score} is outside [0, 1]; outcomes are scores in [0, 1]")
    return score


def _cost(path: Path, rows: list[dict[str, Any]], columns: list[str], model: str) -> Floats | None:
    name = f"cost_{model}"
    return np.asarray(_numbers(path, rows, name)) if name in columns else None


def _numbers(path: Path, rows: list[dict[str, Any]], column: str) -> list[float]:
    out = []
    for line, row in enumerate(rows, start=1):
        try:
            value = float(row.get(column))  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise DataFileError(
                f"{path}: column '{column}' row {line}: {row.get(column)!r} is not a number"
            ) from exc
        if value < 0:
            raise DataFileError(f"{path}: column '{column}' row {line}: a cost cannot be negative")
        out.append(value)
    return out


def _text(path: Path, row: dict[str, Any], column: str, line: int) -> str:
    value = row.get(column)
    if not isinstance(value, str):
        raise DataFileError(f"{path}: column '{column}' row {line}: expected text, got {value!r}")
    return value


def _require(path: Path, columns: list[str], name: str) -> None:
    if name not in columns:
        raise DataFileError(f"{path}: no column '{name}'; columns: {', '.join(columns)}")
