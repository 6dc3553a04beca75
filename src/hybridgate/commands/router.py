"""``hybridgate router train|eval|explain|reload`` (``hybridgate bench router`` is in
``hybridgate_bench.router_command``).

Registered by cli.py: ``app.add_typer(router.app, name="router")`` and, for
``hybridgate route "prompt"``, ``app.command("route")(router.explain)``.
Offline: these commands read files and print; they never start the gateway
(``router reload`` only publishes one message to the replicas' Redis).
Unusable input (missing file or column, a model column that is not bool/score, a bad router
file) exits 2 with a message naming the file and the column.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from hybridgate.commands.console import JsonFlag, fail, print_report
from hybridgate.errors import GatewayError

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Train, evaluate and explain the learned router."
)

WeakOption = Annotated[str | None, typer.Option(help="cheap tier's outcome column (default: cheaper/first)")]
StrongOption = Annotated[
    str | None, typer.Option(help="strong tier's outcome column (default: dearer/second)")
]
AnswerOption = Annotated[
    str | None, typer.Option(help="column with the cheap tier's answers: train a cascade verifier on them")
]


@app.command()
def train(
    data: Annotated[Path, typer.Argument(help="CSV or JSONL: prompt + one outcome column per model")],
    out: Annotated[Path, typer.Option(help="router file to write")] = Path("router.json"),
    target_quality: Annotated[
        float | None, typer.Option(min=0, max=1, help="keep >= this share of the strong tier's quality")
    ] = None,
    max_strong_share: Annotated[
        float | None, typer.Option(min=0, max=1, help="instead: send <= this share to the strong tier")
    ] = None,
    weak: WeakOption = None,
    strong: StrongOption = None,
    answer: AnswerOption = None,
    folds: Annotated[int, typer.Option(min=2, help="cross-validation folds for the held-out scores")] = 5,
    confidence: Annotated[
        float, typer.Option(min=0.5, max=0.999, help="meet the target on this share of bootstrap resamples")
    ] = 0.5,
    seed: int = 0,
    json: JsonFlag = False,
) -> None:
    """Train a router file from outcome data and calibrate its threshold on held-out rows."""
    from hybridgate.embedder import WordLlamaEmbedder
    from hybridgate.router.artifact import file_sha256
    from hybridgate.router.features import FeatureSpec, Featurizer
    from hybridgate.training.calibration import Target
    from hybridgate.training.dataset import load_outcomes
    from hybridgate.training.train import TrainingOptions, train_router

    if target_quality is not None and max_strong_share is not None:
        fail(ValueError("give --target-quality or --max-strong-share, not both"))
    target = (
        Target("strong_share", max_strong_share)
        if max_strong_share is not None
        else Target("quality", 0.95 if target_quality is None else target_quality)
    )
    started = time.perf_counter()
    try:
        outcomes = load_outcomes(data, weak, strong, answer)
        featurizer = Featurizer(FeatureSpec(answer=answer is not None), WordLlamaEmbedder())
        options = TrainingOptions(target=target, folds=folds, seed=seed, confidence=confidence)
        info = {"file": data.name, "sha256": file_sha256(data)}
        artifact = train_router(outcomes, featurizer, options, info)
    except GatewayError as exc:
        fail(exc)
    artifact.save(out)
    report = {
        "router": str(out),
        "target": target.describe(),
        "threshold": artifact.threshold,
        "calibration": artifact.calibration,
        "held_out": artifact.metrics["held_out"],
        "training": artifact.training,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print_report(report, json)


@app.command("eval")
def eval_command(
    data: Annotated[Path, typer.Argument(help="CSV or JSONL outcome data (not the training data!)")],
    router: Annotated[Path, typer.Option(help="router file from `hybridgate router train`")],
    weak: WeakOption = None,
    strong: StrongOption = None,
    answer: AnswerOption = None,
    threshold: Annotated[float | None, typer.Option(help="override the file's threshold")] = None,
    json: JsonFlag = False,
) -> None:
    """Strong share at 95% quality, APGR, CPT(50%/80%), cost, decision latency on DATA."""
    from hybridgate.router.learned import LearnedRouter
    from hybridgate.training.dataset import load_outcomes
    from hybridgate.training.evaluation import evaluate

    try:
        model = LearnedRouter.load(router, threshold=threshold)
        if model.artifact.features.answer and answer is None:
            answer = f"{model.artifact.training.get('weak', '')}_response"
        outcomes = load_outcomes(data, weak, strong, answer if model.artifact.features.answer else None)
        report = evaluate(model, outcomes)
    except GatewayError as exc:
        fail(exc)
    print_report(report, json)


def explain(
    prompt: Annotated[str, typer.Argument(help="the prompt to route")],
    router: Annotated[
        Path | None, typer.Option(help="router file (else: the route's, from --config)")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file")] = None,
    route: Annotated[str, typer.Option(help="route or model the request names")] = "auto",
    json: JsonFlag = False,
) -> None:
    """Explain a routing decision: route, backends, rule, probability, threshold, top features."""
    try:
        report = (
            _explain_file(prompt, router) if router is not None else _explain_config(prompt, config, route)
        )
    except GatewayError as exc:
        fail(exc)
    print_report(report, json)


app.command("explain")(explain)


def _explain_file(prompt: str, path: Path) -> dict[str, Any]:
    from hybridgate.router.learned import LearnedRouter

    score = LearnedRouter.load(path).score(prompt)
    return {
        "router": str(path),
        "p_cheap_ok": round(score.cheap, 4),
        "p_strong_ok": round(score.strong, 4),
        "gain": round(score.gain, 4),
        "threshold": score.threshold,
        "tier": "strong" if score.use_strong else "cheap",
        "top_features": list(score.top),
    }


def _explain_config(prompt: str, path: Path | None, route: str) -> dict[str, Any]:
    from hybridgate.config import load_config
    from hybridgate.router import RuleRouter
    from hybridgate.types import ChatRequest, RequestContext

    request = ChatRequest.model_validate({"model": route, "messages": [{"role": "user", "content": prompt}]})
    decision = RuleRouter(load_config(path)).decide(request, RequestContext(request_id="explain"))
    return {
        "route": decision.route,
        "backends": list(decision.backends),
        "rule": decision.rule,
        "reasons": list(decision.reasons),
    }


@app.command("reload")
def reload_command(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="TOML config file (with a redis section)")
    ] = None,
    json: JsonFlag = False,
) -> None:
    """Tell every replica to reload its learned router files, through Redis; checks the files first."""
    import asyncio
    import os

    from redis.exceptions import RedisError

    from hybridgate.config import load_config
    from hybridgate.router.artifact import RouterArtifact
    from hybridgate.router.signal import publish_reload, reload_channel

    try:
        settings = load_config(config)
        learned = {n: r.router_file for n, r in settings.routes.items() if r.router == "learned"}
        checked = {name: RouterArtifact.load(Path(file or "")).sha256 for name, file in learned.items()}
    except GatewayError as exc:
        fail(exc)
    if settings.redis is None:
        fail(ValueError(NO_REDIS))
    try:
        received = asyncio.run(publish_reload(settings.redis, os.environ))
    except (RedisError, OSError) as exc:
        typer.echo(f"hybridgate: could not publish to redis at {settings.redis.url}: {exc}", err=True)
        raise typer.Exit(1) from exc
    report = {"channel": reload_channel(settings.redis), "replicas_signalled": received, "sha256": checked}
    print_report(report, json)


NO_REDIS = (
    "the config has no [redis] section to signal through: each replica reloads a changed router file "
    "by itself every [router] reload_interval_s, or now with POST /admin/router/reload"
)


def _register_retrain() -> None:
    from hybridgate.commands.retrain import retrain_command

    app.command("retrain")(retrain_command)


_register_retrain()
