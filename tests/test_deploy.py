"""The deploy/ folder holds together: every file parses, the compose services, nginx, Prometheus,
Grafana and the Kubernetes manifests name each other's hosts and ports consistently, the gateway
config files validate, and every metric the Grafana dashboard plots exists on a real gateway's
/metrics.

No container runs here (there is no container engine on the test machine): these checks catch
the mistakes that make a compose file or manifest fail on first start, not runtime behaviour.
"""

from __future__ import annotations

import json
import re
import tomllib
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from hybridgate.app import create_app
from hybridgate.auth.pg_keys import PostgresKeyStore, postgres_key_store
from hybridgate.config import GatewayConfig, load_config
from tests.servers import serve_in_thread
from tests.standins.openai_upstream import run_openai_standin

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
GATEWAYS = ["gateway-1", "gateway-2"]


def load_yaml(name: str) -> Any:
    return yaml.safe_load((DEPLOY / name).read_text())


def k8s(kind: str, name: str | None = None) -> dict[str, Any]:
    """The gateway's one manifest of this kind (by name where the gateway has several)."""
    docs = [d for f in sorted((DEPLOY / "k8s").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text())]
    matches = [
        d
        for d in docs
        if d
        and d["kind"] == kind
        and d["metadata"]["name"] != "vllm"
        and name in (None, d["metadata"]["name"])
    ]
    assert len(matches) == 1, f"one {kind} for the gateway"
    manifest: dict[str, Any] = matches[0]
    return manifest


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    services: dict[str, Any] = load_yaml("docker-compose.yml")["services"]
    return services


@pytest.fixture(scope="module")
def config() -> GatewayConfig:
    return load_config(DEPLOY / "hybridgate.toml")


def host_port(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname and parts.port, url
    return parts.hostname, parts.port


def test_every_file_parses() -> None:
    files = [p for p in DEPLOY.rglob("*") if p.suffix in (".yml", ".yaml", ".json", ".toml")]
    assert len(files) >= 14
    for path in files:
        text = path.read_text()
        if path.suffix == ".json":
            json.loads(text)
        elif path.suffix == ".toml":
            tomllib.loads(text)
        else:
            assert list(yaml.safe_load_all(text)), path


def test_compose_runs_the_whole_stack(compose: dict[str, Any]) -> None:
    expected = {*GATEWAYS, "nginx", "redis", "postgres", "vllm", "prometheus", "grafana"}
    assert set(compose) == expected
    for name in GATEWAYS:
        gateway = compose[name]
        assert (DEPLOY / gateway["build"]["context"] / gateway["build"]["dockerfile"]).is_file()
        assert "./hybridgate.toml:/etc/hybridgate/hybridgate.toml:ro" in gateway["volumes"]
        assert {"redis", "postgres"} <= set(gateway["depends_on"])
    for service in compose.values():  # every file mounted from here exists
        for volume in service.get("volumes", []):
            if volume.startswith("./"):
                assert (DEPLOY / volume.split(":")[0]).exists(), volume


def test_the_dockerfile_copies_what_exists_and_runs_the_config_compose_mounts() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    for line in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.M):
        for source in line.split():
            assert (DEPLOY.parent / source).exists(), source
    assert '"--config", "/etc/hybridgate/hybridgate.toml"' in dockerfile


def test_the_gateway_config_names_compose_services(compose: dict[str, Any], config: GatewayConfig) -> None:
    assert config.redis is not None and config.postgres is not None and config.cache is not None
    assert config.ledger.store == "postgres" and config.cache.store == "redis"
    assert config.auth.limits_store == "redis"
    assert config.auth.keys_store == "postgres"  # one key database for every replica
    for url in [config.redis.url, config.postgres.dsn, *config.backends["local"].model_dump()["replicas"]]:
        host, port = host_port(url)
        assert str(port) in compose[host]["expose"], url
    local = config.backends["local"]
    assert local.type == "openai_compat" and local.local and local.health_path == "/health"
    host, port = host_port(local.base_url)
    assert compose[host]["command"][compose[host]["command"].index("--port") + 1] == str(port)
    for name in GATEWAYS:  # every secret the config reads by name is passed in
        env = compose[name]["environment"]
        for var in secret_env_vars(config):
            assert var in env, var
        assert str(config.server.port) in compose[name]["expose"]


def secret_env_vars(config: GatewayConfig) -> set[str]:
    names = {config.ledger.hmac_secret_env}
    if config.auth.keys_store == "postgres":  # the pepper comes from the variable only
        names.add(config.auth.pepper_env)
    names |= {v for b in config.backends.values() if (v := getattr(b, "api_key_env", None))}
    if config.postgres and config.postgres.password_env:
        names.add(config.postgres.password_env)
    return names


def test_nginx_and_prometheus_reach_every_gateway(config: GatewayConfig) -> None:
    targets = [f"{name}:{config.server.port}" for name in GATEWAYS]
    nginx = (DEPLOY / "nginx" / "nginx.conf").read_text()
    assert re.findall(r"^\s*server (\S+?:\d+)", nginx, re.M) == targets
    port = re.search(r"listen (\d+);", nginx)
    assert port and f"{port[1]}:{port[1]}" in load_yaml("docker-compose.yml")["services"]["nginx"]["ports"]
    jobs = {job["job_name"]: job for job in load_yaml("prometheus/prometheus.yml")["scrape_configs"]}
    assert jobs["hybridgate"]["static_configs"][0]["targets"] == targets


def test_grafana_provisions_prometheus_and_the_dashboard(compose: dict[str, Any]) -> None:
    source = load_yaml("grafana/provisioning/datasources/prometheus.yml")["datasources"][0]
    host, port = host_port(source["url"])
    assert host == "prometheus" and f"{port}:{port}" in compose["prometheus"]["ports"]
    provider = load_yaml("grafana/provisioning/dashboards/hybridgate.yml")["providers"][0]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in compose["grafana"]["volumes"]
    uids = {t["datasource"]["uid"] for p in dashboard()["panels"] for t in p["targets"]}
    assert uids == {source["uid"]}


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DEPLOY / "grafana" / "dashboards" / "hybridgate.json").read_text())
    return data


def env_example() -> dict[str, str]:
    lines = (DEPLOY / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def in_cluster_config() -> GatewayConfig:
    return GatewayConfig.model_validate(tomllib.loads(k8s("ConfigMap")["data"]["hybridgate.toml"]))


@pytest.mark.parametrize("which", ["compose", "k8s"])
def test_both_configs_load_and_keep_keys_in_postgres_even_with_auth_on(which: str) -> None:
    config = load_config(DEPLOY / "hybridgate.toml") if which == "compose" else in_cluster_config()
    env = env_example()
    assert secret_env_vars(config) <= set(env)  # .env.example names every secret the config reads
    enabled = GatewayConfig.model_validate(
        {**config.model_dump(), "auth": {**config.auth.model_dump(), "enabled": True}}
    )
    store = postgres_key_store(enabled, env)  # what `enabled = true` builds: the shared store
    assert isinstance(store, PostgresKeyStore) and store.where == "postgres:5432/hybridgate"


def test_kubernetes_manifests_fit_together(config: GatewayConfig) -> None:
    statefulset, service, hpa, configmap = (
        k8s("StatefulSet"),
        k8s("Service", "hybridgate"),
        k8s("HorizontalPodAutoscaler"),
        k8s("ConfigMap"),
    )
    pod = statefulset["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["targetPort"] in {p["name"] for p in container["ports"]}
    assert container["ports"][0]["containerPort"] == config.server.port
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    pre_stop_s = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    # the pod is killed after the grace period: it must cover preStop plus the 30 s drain
    assert pod["spec"]["terminationGracePeriodSeconds"] >= pre_stop_s + 30
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == (statefulset["kind"], statefulset["metadata"]["name"])
    assert (
        k8s("PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items()
        <= pod["metadata"]["labels"].items()
    )
    assert hpa["spec"]["minReplicas"] >= 2
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == configmap["metadata"]["name"]
    in_cluster = in_cluster_config()
    secret = k8s("Secret")
    assert container["envFrom"][0]["secretRef"]["name"] == secret["metadata"]["name"]
    assert secret_env_vars(in_cluster) <= set(secret["stringData"])
    assert in_cluster.ledger.spool_path.startswith(
        next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "spool")
    )


@pytest.fixture(scope="module")
def metrics_text(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """/metrics of a real gateway (in front of a stand-in upstream) after one request."""
    ledger = tmp_path_factory.mktemp("deploy") / "gw.db"
    with run_openai_standin() as upstream:
        config = GatewayConfig.model_validate(
            {
                "ledger": {"path": str(ledger)},
                "cache": {"store": "memory"},
                "backends": {"up": {"type": "openai_compat", "base_url": upstream.base_url, "model": "m"}},
                "routes": {"auto": {"try": ["up"]}},
            }
        )
        with serve_in_thread(create_app(config, env={})) as url:
            body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
            assert httpx.post(f"{url}/v1/chat/completions", json=body).status_code == 200
            yield httpx.get(f"{url}/metrics").text


def exported_names(metrics_text: str) -> set[str]:
    """Every series name the families on /metrics can export, labelled children or not yet."""
    suffixes = {"counter": ["_total", "_created"], "histogram": ["_bucket", "_sum", "_count", "_created"]}
    names = set()
    for family, kind in re.findall(r"^# TYPE (\S+) (\S+)$", metrics_text, re.M):
        base = family.removesuffix("_total") if kind == "counter" else family  # TYPE may name either
        names |= {base + s for s in suffixes.get(kind, [""])}
    return names


def test_every_dashboard_metric_is_on_the_gateway(metrics_text: str) -> None:
    exported = exported_names(metrics_text)
    assert (
        "hybridgate_requests_total" in exported and "hybridgate_request_duration_seconds_bucket" in exported
    )
    for panel in dashboard()["panels"]:
        used = {name for t in panel["targets"] for name in re.findall(r"\bhybridgate_\w+", t["expr"])}
        if panel["title"] != "Gateway replicas up":  # Prometheus' own `up`
            assert used, panel["title"]
        assert used <= exported, (panel["title"], used - exported)


def test_the_kubernetes_ledger_spool_is_on_a_persistent_volume_per_replica() -> None:
    """Rows spooled while PostgreSQL is down must outlive the pod: a claim per replica, not an emptyDir."""
    statefulset = k8s("StatefulSet")
    spec = statefulset["spec"]
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    spool_dir = in_cluster_config().ledger.spool_path.rsplit("/", 1)[0]
    mount = next(m for m in container["volumeMounts"] if spool_dir.startswith(m["mountPath"]))
    claims = {c["metadata"]["name"]: c["spec"] for c in spec["volumeClaimTemplates"]}
    assert mount["name"] in claims and claims[mount["name"]]["accessModes"] == ["ReadWriteOnce"]
    assert mount["name"] not in {v["name"] for v in pod["volumes"]}  # not shadowed by an emptyDir
    assert not any("emptyDir" in v for v in pod["volumes"])
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenScaled": "Retain", "whenDeleted": "Retain"}
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"]  # writable by the gateway
    headless = k8s("Service", spec["serviceName"])  # the StatefulSet's governing Service exists
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"].items() <= spec["template"]["metadata"]["labels"].items()
