"""The router file: one versioned JSON document with everything needed to score a request.

    {"format": "hybridgate-router", "version": 1,
     "features": {...FeatureSpec...}, "regularization": {...},
     "model": {...RouterModel, weights as base64 float32...},
     "threshold": 0.07, "calibration": {...target, CI...},
     "training": {"file": "outcomes.csv", "sha256": "...", "rows": 5000, "weak": "...", "strong": "..."},
     "metrics": {...held-out strong_share_at_95, apgr, cpt50, cpt80...}, "created": "..."}

Loaded once at gateway start-up; any problem is a ``RouterFileError`` naming the file and the
field. Part of the router (step 2 of the flow); reading the file is its only I/O.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hybridgate.errors import RouterFileError
from hybridgate.router.features import FeatureSpec
from hybridgate.router.model import RouterModel

FORMAT = "hybridgate-router"
VERSION = 1


@dataclass(frozen=True)
class RouterArtifact:
    features: FeatureSpec
    model: RouterModel
    threshold: float
    calibration: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    regularization: dict[str, float] = field(default_factory=dict)
    created: str = ""
    sha256: str = ""  # of the exact bytes loaded (not written to the file): which file a replica runs

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "created": self.created or datetime.now(UTC).isoformat(timespec="seconds"),
            "features": self.features.to_json(),
            "regularization": self.regularization,
            "threshold": self.threshold,
            "calibration": self.calibration,
            "training": self.training,
            "metrics": self.metrics,
            "model": self.model.to_json(),
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> RouterArtifact:
        try:
            raw = path.read_bytes()  # read once: the hash and the parsed model are of the same bytes
            data = json.loads(raw.decode("utf-8"))
        except FileNotFoundError as exc:
            raise RouterFileError(
                f"router file {path} not found; `hybridgate router train` writes one"
            ) from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RouterFileError(f"router file {path}: not JSON ({exc})") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise RouterFileError(f"router file {path}: field 'format' is not '{FORMAT}'")
        if data.get("version") != VERSION:
            raise RouterFileError(
                f"router file {path}: field 'version' is {data.get('version')!r}; "
                f"this gateway reads version {VERSION}"
            )
        return cls._parse(path, data, hashlib.sha256(raw).hexdigest())

    @classmethod
    def _parse(cls, path: Path, data: dict[str, Any], sha256: str) -> RouterArtifact:
        section = "features"
        try:
            features = FeatureSpec.from_json(data[section])
            section = "model"
            model = RouterModel.from_json(data[section])
            section = "threshold"
            threshold = float(data[section])
        except (KeyError, TypeError, ValueError) as exc:
            raise RouterFileError(
                f"router file {path}: field '{section}' is missing or malformed ({exc})"
            ) from exc
        _check_shapes(path, features, model)
        return cls(
            features=features,
            model=model,
            threshold=threshold,
            calibration=dict(data.get("calibration") or {}),
            training=dict(data.get("training") or {}),
            metrics=dict(data.get("metrics") or {}),
            regularization=dict(data.get("regularization") or {}),
            created=str(data.get("created", "")),
            sha256=sha256,
        )


def _check_shapes(path: Path, features: FeatureSpec, model: RouterModel) -> None:
    dense = len(model.mean)
    for name, size in (
        ("model.scale", len(model.scale)),
        ("model.weak.dense", len(model.weak.dense)),
        ("model.strong.dense", len(model.strong.dense)),
    ):
        if size != dense:
            raise RouterFileError(f"router file {path}: field '{name}' has {size} values, expected {dense}")
    for name, size in (
        ("model.idf", len(model.idf)),
        ("model.weak.tokens", len(model.weak.tokens)),
        ("model.strong.tokens", len(model.strong.tokens)),
    ):
        if size != features.token_buckets:
            raise RouterFileError(
                f"router file {path}: field '{name}' has {size} values, expected {features.token_buckets}"
            )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
