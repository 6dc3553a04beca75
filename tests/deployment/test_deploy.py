"""The deploy/ folder holds together: every file parses, the compose services, nginx, Prometheus,
Grafana and the Kubernetes manifests name each other's hosts and ports consistently, the gateway
config files validate, and every metric the Grafana dashboard plots exists on a real gateway's
/metrics.

No container runs here (there is no container engine on the test machine): these checks catch
the mistakes that make a compose file or manifest fail on first start, not runtime behaviour.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
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
from hybridgate.cli import KEEP_ALIVE_S
from hybridgate.config import GatewayConfig, load_config
from hybridgate.gateway import build_gateway
from hybridgate.ledger.postgres import CLOSE_TIMEOUT_S
from tests.servers import serve_in_thread
from tests.standins.openai_upstream import run_openai_standin

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
GATEWAYS = ["gateway-1", "gateway-2"]
# What SIGTERM may take: uvicorn's drain (cli.py), the ledger's close deadline, the cache's drain.
SHUTDOWN_S = 30 + CLOSE_TIMEOUT_S + 2
MARGIN_S = 5


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
    upstreams = (DEPLOY / "nginx" / "upstream.conf").read_text()
    assert re.findall(r"^\s*server (\S+?:\d+)", upstreams, re.M) == targets
    port = re.search(r"listen (\d+);", (DEPLOY / "nginx" / "listen.conf").read_text())
    ports = load_yaml("docker-compose.yml")["services"]["nginx"]["ports"]
    assert port and f"127.0.0.1:{port[1]}:{port[1]}" in ports
    jobs = {job["job_name"]: job for job in load_yaml("prometheus/prometheus.yml")["scrape_configs"]}
    assert jobs["hybridgate"]["static_configs"][0]["targets"] == targets


def test_grafana_provisions_prometheus_and_the_dashboard(compose: dict[str, Any]) -> None:
    source = load_yaml("grafana/provisioning/datasources/prometheus.yml")["datasources"][0]
    host, port = host_port(source["url"])
    assert host == "prometheus" and f"127.0.0.1:{port}:{port}" in compose["prometheus"]["ports"]
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
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    pre_stop_s = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    # the pod is killed after the grace period: it must cover preStop, the drain and the closing
    assert pod["spec"]["terminationGracePeriodSeconds"] >= pre_stop_s + SHUTDOWN_S + MARGIN_S
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
    secret = k8s("Secret", "hybridgate-secrets")
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


# -- deploy/ that starts as written -------------------------------------------------------------


def test_the_gateway_image_is_built_from_this_repository_never_pulled(compose: dict[str, Any]) -> None:
    version = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())["project"]["version"]
    for name in GATEWAYS:
        assert compose[name]["pull_policy"] == "build"  # compose builds it; no registry has it
        assert not compose[name]["image"].endswith(":latest")
    container = k8s("StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    image, _, tag = container["image"].partition(":")
    assert tag == version and container["imagePullPolicy"] == "IfNotPresent"
    kustomization = load_yaml("k8s/kustomization.yaml")
    assert [i["name"] for i in kustomization["images"]] == [image]  # `kustomize edit set image` target
    assert kustomization["images"][0]["newTag"] == version
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert f"docker build -f deploy/Dockerfile -t {image}:{version} ." in dockerfile
    assert "docker push" in dockerfile


def runtime_stage_packages() -> set[str]:
    """Debian packages the Dockerfile's last stage (the image that runs) installs."""
    runtime = (DEPLOY / "Dockerfile").read_text().rsplit("\nFROM ", 1)[1]
    installs = re.findall(r"apt-get install -y --no-install-recommends ([^&\\]+)", runtime)
    return {package for line in installs for package in line.split()}


# Libraries python:3.11-slim (Debian bookworm) ships; anything else a compiled part needs must be
# installed by the Dockerfile's runtime stage.
BASE_IMAGE_LIBRARIES = {
    "libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1", "ld-linux-x86-64.so.2",
    "libstdc++.so.6", "libgcc_s.so.1", "libz.so.1", "libssl.so.3", "libcrypto.so.3",
}  # fmt: skip
PACKAGE_OF = {"libgomp.so.1": "libgomp1"}


def test_the_runtime_image_has_every_native_library_llama_cpp_links() -> None:
    """Read the NEEDED entries of llama-cpp-python's shared libraries as built here (the same
    pip install the Dockerfile runs) and check each is in the venv, the base image, or installed."""
    spec = importlib.util.find_spec("llama_cpp")  # found, not imported: no model runtime needed
    assert spec is not None and spec.origin is not None
    libs = sorted((Path(spec.origin).parent / "lib").glob("*.so*"))
    assert libs, "llama_cpp ships no shared library?"
    shipped = {lib.name for lib in libs}
    needed: set[str] = set()
    for lib in libs:
        dynamic = subprocess.run(["readelf", "-d", str(lib)], capture_output=True, text=True, check=True)
        needed |= set(re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dynamic.stdout))
    missing = needed - shipped - BASE_IMAGE_LIBRARIES
    assert "libgomp.so.1" in needed  # llama.cpp's CPU backend uses OpenMP
    assert {PACKAGE_OF.get(name, name) for name in missing} <= runtime_stage_packages(), missing


def test_nothing_is_published_beyond_loopback(compose: dict[str, Any]) -> None:
    published = [port for service in compose.values() for port in service.get("ports", [])]
    assert published and all(port.startswith("127.0.0.1:") for port in published), published


@pytest.mark.parametrize("which", ["compose", "k8s"])
def test_auth_is_on_and_prometheus_scrapes_with_an_admin_key_from_a_secret(which: str) -> None:
    config = load_config(DEPLOY / "hybridgate.toml") if which == "compose" else in_cluster_config()
    assert config.auth.enabled
    if which == "compose":
        jobs = load_yaml("prometheus/prometheus.yml")["scrape_configs"]
        job = next(j for j in jobs if j["job_name"] == "hybridgate")
        secrets_dir = job["authorization"]["credentials_file"].rsplit("/", 1)[0]
        volumes = load_yaml("docker-compose.yml")["services"]["prometheus"]["volumes"]
        assert f"./secrets:{secrets_dir}:ro" in volumes
        assert (DEPLOY / "secrets" / ".gitignore").read_text().startswith("*")  # keys never committed
    else:
        assert "admin-key" in k8s("Secret", "hybridgate-admin-key")["stringData"]


@pytest.mark.parametrize("which", ["compose", "k8s"])
def test_the_example_secrets_start_a_gateway_without_a_cloud_key(which: str) -> None:
    """The example .env and Secret leave OPENAI_API_KEY empty: the gateway builds (the openai
    backend disabled, with a warning) instead of stopping at start."""
    if which == "compose":
        config, env = load_config(DEPLOY / "hybridgate.toml"), env_example()
    else:
        config, env = in_cluster_config(), dict(k8s("Secret", "hybridgate-secrets")["stringData"])
    assert env["OPENAI_API_KEY"] == ""
    gateway = build_gateway(config, env)
    assert getattr(gateway.backends["openai"], "disabled", None) == "$OPENAI_API_KEY is empty"


def test_probes_use_readyz_and_livez_and_the_hpa_owns_the_replica_count(compose: dict[str, Any]) -> None:
    statefulset = k8s("StatefulSet")
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["startupProbe"]["httpGet"]["path"] == "/livez"
    # probes go to the health port, which answers from the start: the serving port opens only
    # once the replica is ready, so a probe there would fail liveness while PostgreSQL is down
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    health_port = in_cluster_config().server.health_port
    assert health_port is not None and health_port != in_cluster_config().server.port
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert ports[container[probe]["httpGet"]["port"]] == health_port
    # a probe must outlast the store deadline it may wait on ([postgres] timeout_s)
    assert container["readinessProbe"]["timeoutSeconds"] > in_cluster_config().postgres.timeout_s  # type: ignore[union-attr]
    assert "replicas" not in statefulset["spec"]  # `kubectl apply` would fight the HPA
    compose_health = load_config(DEPLOY / "hybridgate.toml").server.health_port
    for name in GATEWAYS:
        assert f"127.0.0.1:{compose_health}/readyz" in " ".join(compose[name]["healthcheck"]["test"])
        grace = int(compose[name]["stop_grace_period"].removesuffix("s"))
        assert grace >= SHUTDOWN_S + MARGIN_S
    assert (
        f"127.0.0.1:{compose_health}/readyz" in (DEPLOY / "Dockerfile").read_text().split("HEALTHCHECK", 1)[1]
    )


def test_resources_fit_one_event_loop_per_pod() -> None:
    resources = k8s("StatefulSet")["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert float(resources["requests"]["cpu"]) >= 1  # one process, one event loop on one core
    memory = {k: int(v.removesuffix("Mi").removesuffix("Gi")) * (1024 if v.endswith("Gi") else 1)
              for k, v in ((k, resources[k]["memory"]) for k in ("requests", "limits"))}  # fmt: skip
    assert memory["limits"] >= memory["requests"] >= 256


def test_nginx_closes_idle_upstream_connections_before_the_gateway_and_re_resolves_names() -> None:
    nginx = (DEPLOY / "nginx" / "nginx.conf").read_text()
    upstream = re.search(r"upstream hybridgate \{(.+?)\n    \}", nginx, re.S)
    assert upstream is not None
    timeout = re.search(r"keepalive_timeout (\d+)s;", upstream[1])
    assert timeout and int(timeout[1]) < KEEP_ALIVE_S
    assert "zone hybridgate" in upstream[1] and re.search(r"^\s*resolver ", nginx, re.M)
    servers = re.findall(r"^server .+;$", (DEPLOY / "nginx" / "upstream.conf").read_text(), re.M)
    assert servers and all(" resolve " in line for line in servers)
    image = load_yaml("docker-compose.yml")["services"]["nginx"]["image"]
    version = tuple(int(n) for n in re.findall(r"nginx:(\d+)\.(\d+)", image)[0])
    assert version >= (1, 28)  # `resolve` in an upstream needs 1.27.3 or newer


def test_grafana_panels_show_data_where_the_old_ones_showed_none_or_misled() -> None:
    panels = {panel["title"]: panel["targets"][0]["expr"] for panel in dashboard()["panels"]}
    pins = next(expr for title, expr in panels.items() if "pin" in title)
    assert pins.endswith("or vector(0)")  # a labelled counter has no series before its first mismatch
    unavailable = next(expr for title, expr in panels.items() if title.startswith("503s"))
    assert "error_type" in unavailable  # overloaded vs service_unavailable, not every 503 an overload
    replicas = panels["Gateway replicas up"]
    assert "job=" not in replicas  # Kubernetes' pod-discovery job is not called "hybridgate"
    assert "hybridgate_degraded" in " ".join(panels.values())
