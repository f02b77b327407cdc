"""collector/: the Collector config, its destination switch, the Compose stack, and the sink route.

Neither the Collector nor Docker runs here, so the configs are rendered the way the pinned
Collector (Contrib 0.136.0) does it and then checked: the files given with several ``--config``
flags are merged in order (maps key by key; lists and scalars replaced), then ``${env:NAME}`` and
``${env:NAME:-default}`` are expanded (the default only for an UNSET variable; a reference that
is the whole value is parsed as YAML). Compose's own ``${NAME:-default}`` substitution (default
for unset or empty) and its environment pass-through are simulated for the README's examples.
"""

from __future__ import annotations

import functools
import gzip
import re
import shlex
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from demo_router.router import providers_from_env
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from beacon_otel.settings import load_settings, load_sink_settings
from tests import collector_components as components
from tests.support.postgres import PostgresServer
from tests.support.processes import ROOT, stop
from tests.test_sink import TOKEN, Database, _migrate, _new_database, _request, _start_sink

COLLECTOR = ROOT / "collector"
BASE = COLLECTOR / "otelcol.yaml"
COMPOSE = COLLECTOR / "compose.yaml"
README = COLLECTOR / "README.md"
INIT_SQL = COLLECTOR / "postgres" / "initdb" / "01-trace-spans.sql"
DESTINATIONS = sorted((COLLECTOR / "destinations").glob("*.yaml"))
SAMPLINGS = sorted((COLLECTOR / "sampling").glob("*.yaml"))
CONFIG_FILES = [BASE, *DESTINATIONS, *SAMPLINGS]

KINDS = ("receivers", "processors", "exporters", "extensions", "connectors")
SIGNALS = ("traces", "metrics", "logs")
NETWORK_EXPORTER_TYPES = ("otlp", "otlphttp")
# Components that handle one signal only (by type, or by id for the destinations' exporters):
# the Collector refuses the others, and Jaeger and the sink accept traces only.
ONLY_SIGNAL = {
    "httpcheck": "metrics",
    "prometheus": "metrics",
    "tail_sampling": "traces",
    "otlp/jaeger": "traces",
    "otlphttp/sink": "traces",
}
# Ports the Jaeger v2 image listens on (its Dockerfile sets JAEGER_LISTEN_HOST=0.0.0.0).
JAEGER_PORTS = {4317, 4318, 16686}

ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
COMPOSE_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


# --- rendering, as the Collector and Compose do it -------------------------------------------------


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text()) or {}


def merge(base: Any, override: Any) -> Any:
    """One more ``--config`` file over the previous result: maps merged, everything else replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    return override


def strings(node: Any) -> Iterator[str]:
    """Every string value of a parsed YAML document (comments are gone already)."""
    if isinstance(node, dict):
        node = list(node.values())
    if isinstance(node, list):
        for value in node:
            yield from strings(value)
    elif isinstance(node, str):
        yield node


def map_strings(node: Any, function: Callable[[str], Any]) -> Any:
    if isinstance(node, dict):
        return {key: map_strings(value, function) for key, value in node.items()}
    if isinstance(node, list):
        return [map_strings(value, function) for value in node]
    return function(node) if isinstance(node, str) else node


def refs(node: Any, pattern: re.Pattern[str] = ENV_REF) -> list[tuple[str, str | None]]:
    """(name, default or None) of every variable reference in a parsed document."""
    return [(match[1], match[2]) for text in strings(node) for match in pattern.finditer(text)]


def _expand(text: str, env: Mapping[str, str]) -> Any:
    assert "$" not in ENV_REF.sub("", text), f"{text!r}: only ${{env:NAME[:-default]}} is used here"
    whole = ENV_REF.fullmatch(text)
    if whole is None:  # embedded in a longer string: plain text substitution
        return ENV_REF.sub(lambda match: env.get(match[1], match[2] or ""), text)
    name, default = whole.groups()
    if name not in env and default == "":
        return ""  # an explicit empty default stays a string
    value = env.get(name, default or "")
    return yaml.safe_load(value) if value else None  # unset without default, or set empty: nil


def expand(node: Any, env: Mapping[str, str]) -> Any:
    """The Collector's ``${env:NAME[:-default]}``: default only when unset; a whole value is YAML."""
    return map_strings(node, lambda text: _expand(text, env))


def render(files: list[Path], env: Mapping[str, str] | None = None) -> dict[str, Any]:
    merged: dict[str, Any] = functools.reduce(merge, (load(path) for path in files), {})
    rendered: dict[str, Any] = expand(merged, env or {})
    return rendered


def _interpolate(text: str, shell: Mapping[str, str]) -> str:
    assert "$" not in COMPOSE_REF.sub("", text), f"{text!r}: only ${{NAME[:-default]}} is used in compose"
    return COMPOSE_REF.sub(lambda match: shell.get(match[1]) or match[2] or "", text)


def compose(shell: Mapping[str, str] | None = None) -> dict[str, Any]:
    """compose.yaml after Compose's substitution: ``${NAME:-default}``, default if unset or empty."""
    rendered: dict[str, Any] = map_strings(load(COMPOSE), lambda text: _interpolate(text, shell or {}))
    return rendered


def container_env(service: Mapping[str, Any], shell: Mapping[str, str]) -> dict[str, str]:
    """A service's environment; an entry without a value passes the shell's through, if set."""
    entries = service.get("environment") or {}
    pairs: list[tuple[str, str | None]]
    if isinstance(entries, dict):
        pairs = [(key, None if value is None else str(value)) for key, value in entries.items()]
    else:
        pairs = [(key, value if sep else None) for key, sep, value in (e.partition("=") for e in entries)]
    env = {}
    for key, value in pairs:
        if value is not None:
            env[key] = value
        elif key in shell:
            env[key] = shell[key]
    return env


def collector_files(service: Mapping[str, Any]) -> list[Path]:
    """The files of the Collector's ``--config`` flags, on this side of the volume mount."""
    mounts = {}
    for volume in service["volumes"]:
        source, target = volume.split(":")[:2]
        mounts[target.rstrip("/")] = (COMPOSE.parent / source).resolve()
    files = []
    for argument in service["command"]:
        assert argument.startswith("--config="), argument
        path = argument.removeprefix("--config=")
        target = next(t for t in mounts if path.startswith(t + "/"))
        files.append(mounts[target] / path[len(target) + 1 :])
    return files


def render_compose(shell: Mapping[str, str]) -> dict[str, Any]:
    """The Collector's effective config when ``docker compose up`` runs with ``shell``."""
    collector = compose(shell)["services"]["collector"]
    files = collector_files(collector)
    missing = [str(path) for path in files if not path.is_file()]
    assert not missing, f"compose would start the Collector with missing files: {missing}"
    return render(files, container_env(collector, shell))


# --- the checks a Collector makes at start-up (and a few of ours) ----------------------------------


def problems(config: Mapping[str, Any]) -> list[str]:
    found = []
    defined = {kind: config.get(kind) or {} for kind in KINDS}
    for kind in KINDS:
        for name in defined[kind]:
            component_type = name.split("/")[0]
            if components.module_of(kind, component_type) is None:
                found.append(
                    f"{kind} {name!r}: no type {component_type!r} in Collector Contrib {components.VERSION}"
                )
    service = config.get("service") or {}
    for extension in service.get("extensions") or []:
        if extension not in defined["extensions"]:
            found.append(f"service.extensions: {extension!r} is not defined")
    pipelines = service.get("pipelines") or {}
    if sorted({name.split("/")[0] for name in pipelines}) != sorted(SIGNALS):
        found.append(f"expected pipelines for {SIGNALS}, got {sorted(pipelines)}")
    connectors_out: set[str] = set()
    connectors_in: set[str] = set()
    for pipeline_name, pipeline in pipelines.items():
        signal = pipeline_name.split("/")[0]
        roles = {
            "receivers": ("receivers", "connectors"),
            "processors": ("processors",),
            "exporters": ("exporters", "connectors"),
        }
        for role, kinds in roles.items():
            names = pipeline.get(role) or []
            where = f"pipeline {pipeline_name} {role}"
            if not names and role != "processors":
                found.append(f"{where}: empty")
            if len(set(names)) != len(names):
                found.append(f"{where}: duplicates in {names}")
            for name in names:
                if not any(name in defined[kind] for kind in kinds):
                    found.append(f"{where}: {name!r} is not defined")
                only = ONLY_SIGNAL.get(name, ONLY_SIGNAL.get(name.split("/")[0]))
                if only is not None and only != signal:
                    found.append(f"{where}: {name!r} handles {only} only")
                if name in defined["connectors"]:
                    (connectors_in if role == "receivers" else connectors_out).add(name)
        processors = pipeline.get("processors") or []
        if processors[:1] != ["memory_limiter"] or processors[-1:] != ["batch"]:
            found.append(f"pipeline {pipeline_name}: processors must run memory_limiter first, batch last")
        for name in pipeline.get("exporters") or []:
            found += _exporter_problems(name, defined["exporters"].get(name))
    for name in defined["connectors"]:
        if name not in connectors_in or name not in connectors_out:
            found.append(f"connector {name!r} must be an exporter of one pipeline and a receiver of another")
    return found


def _exporter_problems(name: str, settings: Mapping[str, Any] | None) -> list[str]:
    component_type = name.split("/")[0]
    if settings is None or component_type not in NETWORK_EXPORTER_TYPES:
        return []
    found = []
    endpoint = settings.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        found.append(f"exporter {name!r}: empty endpoint (the Collector refuses to start)")
    elif component_type == "otlphttp" and not endpoint.startswith(("http://", "https://")):
        found.append(f"exporter {name!r}: {endpoint!r} is not an http(s) URL")
    for block in ("retry_on_failure", "sending_queue"):
        if (settings.get(block) or {}).get("enabled") is not True:
            found.append(f"exporter {name!r}: {block} must be enabled")
    headers = settings.get("headers")
    if headers is not None and not isinstance(headers, dict):
        found.append(f"exporter {name!r}: headers must be a map, got {headers!r}")
    return found


def exporters(config: Mapping[str, Any], pipeline: str) -> list[str]:
    names: list[str] = config["service"]["pipelines"][pipeline]["exporters"]
    return names


def backend_env(**extra: str) -> dict[str, str]:
    return {"BEACON_COLLECTOR_BACKEND_ENDPOINT": "https://otlp.example.com", **extra}


# --- what the README says ------------------------------------------------------------------------


def variable_table() -> dict[str, str]:
    """name -> default (backticks removed; empty: none) of the README's variable table."""
    rows: dict[str, str] = {}
    lines = iter(README.read_text().splitlines())
    for line in lines:
        if re.fullmatch(r"\|\s*variable\s*\|\s*default\s*\|\s*meaning\s*\|", line.strip()):
            break
    for line in lines:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if set(cells[0]) <= set("-: "):
            continue
        for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[0]):
            rows[name] = cells[1].strip("`")
    return rows


def readme_examples() -> list[tuple[str, dict[str, str], dict[tuple[str, str], list[str]]]]:
    """(command, shell variables, {(pipeline, role): expected ids}) of each example block."""
    examples = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text(), re.S):
        if "docker compose -f collector/compose.yaml up" not in block or "->" not in block:
            continue
        expected: dict[tuple[str, str], list[str]] = {}
        command = []
        for line in block.splitlines():
            match = re.fullmatch(r"#\s*(traces|metrics|logs)( processors)?\s*->\s*(.+)", line.strip())
            if match:
                role = "processors" if match[2] else "exporters"
                expected[(match[1], role)] = [name.strip() for name in match[3].split(",")]
            elif line.strip() and not line.lstrip().startswith("#"):
                command.append(line.rstrip().removesuffix("\\"))
        words = shlex.split(" ".join(command))
        shell = {}
        while words and re.match(r"[A-Z_][A-Z0-9_]*=", words[0]):
            name, _, value = words.pop(0).partition("=")
            shell[name] = value
        assert words[:4] == ["docker", "compose", "-f", "collector/compose.yaml"], words
        examples.append((" ".join(command), shell, expected))
    return examples


# --- the renderer itself ---------------------------------------------------------------------------


def test_configs_merge_as_the_collector_merges_them(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("m: {x: 1, l: [a, b]}\nkeep: 1\n")
    (tmp_path / "b.yaml").write_text("m: {y: 2, l: [c]}\n")
    assert render([tmp_path / "a.yaml", tmp_path / "b.yaml"]) == {
        "m": {"x": 1, "y": 2, "l": ["c"]},
        "keep": 1,
    }


def test_env_references_expand_as_the_collector_expands_them() -> None:
    node = {
        "default": "${env:A:-7}",
        "set": "${env:A:-7}",
        "empty": "${env:B:-7}",
        "embedded": "Bearer ${env:C:-dev}",
        "map": "${env:D}",
        "unset": "${env:E}",
        "empty_default": "${env:E:-}",
    }
    env = {"B": "", "D": '{"x-key": "v"}'}
    assert expand(node, env) == {
        "default": 7,
        "set": 7,
        "empty": None,
        "embedded": "Bearer dev",
        "map": {"x-key": "v"},
        "unset": None,
        "empty_default": "",
    }
    assert expand(node, {**env, "A": "3"})["set"] == 3


def test_the_checks_reject_names_of_other_versions_and_broken_pipelines() -> None:
    config = render([BASE])
    config["exporters"]["otlp_http/x"] = {"endpoint": "http://x"}  # 0.144 and later
    config["exporters"]["logging"] = {}  # removed before 0.136
    config["service"]["pipelines"]["logs"]["exporters"] = ["logging", "otlp/missing"]
    config["service"]["pipelines"]["metrics"]["processors"] = ["batch", "memory_limiter"]
    config["service"]["pipelines"]["metrics"]["exporters"] = ["otlp/jaeger"]
    del config["exporters"]["otlp/jaeger"]["sending_queue"]
    found = "\n".join(problems(config))
    for expected in (
        "no type 'otlp_http'",
        "no type 'logging'",
        "'otlp/missing' is not defined",
        "memory_limiter first",
        "'otlp/jaeger' handles traces only",
        "sending_queue must be enabled",
    ):
        assert expected in found, found


# --- the config files -------------------------------------------------------------------------------


def test_every_yaml_under_collector_parses() -> None:
    files = sorted(COLLECTOR.rglob("*.yaml"))
    assert {BASE, COMPOSE, *DESTINATIONS, *SAMPLINGS} == set(files)
    for path in CONFIG_FILES:
        config = load(path)
        assert set(config) <= {*KINDS, "service"}, path


def test_the_base_config_alone_is_valid() -> None:
    config = render([BASE])
    assert problems(config) == []
    assert config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "0.0.0.0:4318"
    assert {"otlp/jaeger", "otlphttp/sink", "otlphttp/backend", "debug", "prometheus"} <= set(
        config["exporters"]
    )
    assert config["service"]["extensions"] == ["health_check"]
    assert config["service"]["pipelines"]["metrics"]["receivers"] == ["otlp", "httpcheck"]
    targets = [target["endpoint"] for target in config["receivers"]["httpcheck"]["targets"]]
    assert targets == ["http://router:8080/health", "http://router:8080/ready"]


@pytest.mark.parametrize("sampling", SAMPLINGS, ids=lambda path: path.stem)
@pytest.mark.parametrize("destination", DESTINATIONS, ids=lambda path: path.stem)
def test_every_destination_and_sampling_combination_is_valid(destination: Path, sampling: Path) -> None:
    config = render([BASE, destination, sampling], backend_env())
    assert problems(config) == []


def test_destination_files_change_only_exporters_and_the_backend() -> None:
    for path in DESTINATIONS:
        config = load(path)
        assert set(config.get("exporters", {})) <= {"otlphttp/backend"}, path
        for pipeline in config["service"]["pipelines"].values():
            assert set(pipeline) == {"exporters"}, path


def test_the_jaeger_destination_and_sampling_off_are_the_base_config() -> None:
    base = render([BASE])
    assert (
        render([BASE, COLLECTOR / "destinations" / "jaeger.yaml", COLLECTOR / "sampling" / "off.yaml"])
        == base
    )


def test_a_backend_destination_without_its_endpoint_is_refused() -> None:
    for name in ("backend", "backend-sink"):
        config = render([BASE, COLLECTOR / "destinations" / f"{name}.yaml"], {})
        assert "exporter 'otlphttp/backend': empty endpoint" in "\n".join(problems(config))
        assert config["exporters"]["otlphttp/backend"]["headers"] is None


def test_backend_headers_come_from_one_variable_as_a_map() -> None:
    env = backend_env(BEACON_COLLECTOR_BACKEND_HEADERS='{"x-honeycomb-team": "abc", authorization: Bearer x}')
    config = render([BASE, COLLECTOR / "destinations" / "backend.yaml"], env)
    backend = config["exporters"]["otlphttp/backend"]
    assert backend["endpoint"] == "https://otlp.example.com"
    assert backend["headers"] == {"x-honeycomb-team": "abc", "authorization": "Bearer x"}


def test_tail_sampling_is_off_by_default_and_keeps_errors_and_failed_checks_when_on() -> None:
    assert "tail_sampling" not in render_compose({})["service"]["pipelines"]["traces"]["processors"]
    config = render_compose({"BEACON_COLLECTOR_SAMPLING": "on"})
    traces = config["service"]["pipelines"]["traces"]["processors"]
    assert traces == ["memory_limiter", "resource", "tail_sampling", "batch"]
    policies = {policy["type"]: policy for policy in config["processors"]["tail_sampling"]["policies"]}
    assert policies["status_code"]["status_code"]["status_codes"] == ["ERROR"]
    assert policies["boolean_attribute"]["boolean_attribute"] == {
        "key": "beacon.provider.healthy",
        "value": False,
    }
    assert policies["ottl_condition"]["ottl_condition"]["span"] == ['attributes["error.type"] != nil']
    assert policies["probabilistic"]["probabilistic"]["sampling_percentage"] == 10
    # The attributes the policies test are the ones the distro sets on provider checks.
    telemetry = (ROOT / "beacon_otel" / "providers" / "telemetry.py").read_text()
    assert 'set_attribute("beacon.provider.healthy"' in telemetry
    assert 'set_attribute("error.type"' in telemetry
    other = render_compose({"BEACON_COLLECTOR_SAMPLING": "on", "BEACON_COLLECTOR_SAMPLING_PERCENTAGE": "25"})
    assert other["processors"]["tail_sampling"]["policies"][-1]["probabilistic"]["sampling_percentage"] == 25


# --- the pinned version, the variables --------------------------------------------------------------


def test_the_pinned_version_is_named_in_the_config_compose_and_readme() -> None:
    version = components.VERSION
    assert f"Collector Contrib {version}" in BASE.read_text()
    collector = compose()["services"]["collector"]
    assert collector["image"] == f"otel/opentelemetry-collector-contrib:{version}"
    readme = README.read_text()
    assert f"Collector Contrib {version}" in readme
    assert "008cde8ca78cc0286ee3f0de92fa95e1641a445a" in readme and "008cde8ca78cc" in components.SOURCE


def test_images_are_pinned_by_tag() -> None:
    for name, service in compose()["services"].items():
        if "build" in service:
            assert service["build"]["dockerfile"] == "collector/Dockerfile", name
            continue
        image = service["image"]
        assert re.fullmatch(r"[\w./-]+:\d+(\.\d+)+", image), f"{name}: {image} is not pinned to a version"
    dockerfile = (COLLECTOR / "Dockerfile").read_text()
    assert re.search(r"^FROM python:\d+\.\d+\.\d+-", dockerfile, re.M)
    assert "pip install '.[demo,sink]'" in dockerfile
    assert "PYTHONPATH=/app/examples" in dockerfile


def test_every_variable_is_in_the_readme_table_with_the_same_default() -> None:
    table = variable_table()
    references = [ref for path in CONFIG_FILES for ref in refs(load(path))]
    references += refs(load(COMPOSE), COMPOSE_REF)
    assert references
    for name, default in references:
        assert name in table, f"{name} is used in collector/ but missing from collector/README.md's table"
        if default is not None:
            assert table[name] == default, f"{name}: the table says {table[name]!r}, the files {default!r}"
    stale = set(table) - {name for name, _ in references}
    assert not stale, f"documented but unused: {stale}"
    # A variable without any default must be documented as such (an empty default cell).
    defaulted = {name for name, default in references if default is not None}
    for name in {name for name, _ in references} - defaulted:
        assert table[name] == "", name


def test_every_variable_of_the_config_reaches_the_collector_container() -> None:
    collector = load(COMPOSE)["services"]["collector"]
    passed = {entry.partition("=")[0] for entry in collector["environment"]}
    used = {name for path in CONFIG_FILES for name, _ in refs(load(path))}
    assert used <= passed, f"set in your shell but never seen by the Collector: {used - passed}"


# --- ports and names ------------------------------------------------------------------------------


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1].split("/")[0])


def _published(service: Mapping[str, Any]) -> dict[int, int]:
    """container port -> host port."""
    return {int(p.split(":")[1]): int(p.split(":")[0]) for p in service.get("ports", [])}


def test_ports_and_service_names_agree_between_config_compose_and_readme() -> None:
    config = render([BASE])
    services = compose()["services"]
    readme = README.read_text()
    assert set(services) == {"postgres", "jaeger", "collector", "sink", "fake-providers", "router"}

    collector_ports = {
        _port(config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]): 4317,
        _port(config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]): 4318,
        _port(config["extensions"]["health_check"]["endpoint"]): 13133,
        _port(config["exporters"]["prometheus"]["endpoint"]): 8889,
    }
    assert all(port == expected for port, expected in collector_ports.items())
    published = _published(services["collector"])
    for port in collector_ports:
        assert published.get(port) == port, f"the Collector's {port} is not published as {port}"
    assert _published(services["jaeger"]) == {16686: 16686}

    sink_env = container_env(services["sink"], {})
    router_env = container_env(services["router"], {})
    router_command = services["router"]["command"]
    fakes_command = services["fake-providers"]["command"]
    listening = {
        "jaeger": JAEGER_PORTS,
        "sink": {_port(sink_env["BEACON_OTEL_SINK_ADDRESS"])},
        "router": {int(router_command[router_command.index("--port") + 1])},
        "fake-providers": {int(next(a for a in fakes_command if a.startswith("--port=")).split("=")[1])},
        "collector": set(collector_ports),
    }
    assert _published(services["sink"]) == {4320: 4320} and listening["sink"] == {4320}
    assert _published(services["router"]) == {8080: 8080} and listening["router"] == {8080}

    # Every host:port the config defaults to is a Compose service listening on that port.
    defaults = [default for path in CONFIG_FILES for _, default in refs(load(path)) if default]
    addresses = [d for d in defaults if re.fullmatch(r"(https?://)?[\w.-]+:\d+(/.*)?", d)]
    assert len(addresses) == 4  # Jaeger, the sink, /health and /ready of the router
    for address in addresses:
        parsed = urllib.parse.urlsplit(address if "://" in address else f"//{address}")
        host = parsed.hostname or ""
        assert host in services, address
        assert parsed.port in listening[host], address

    # The router exports OTLP/HTTP to the Collector's HTTP receiver.
    assert router_env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector:4318"

    for text in (
        "localhost:16686",
        "localhost:8889/metrics",
        "localhost:13133",
        "localhost:8080",
        "4317",
        "4318",
    ):
        assert text in readme, text
    for port in (4320, 9001):
        assert f"localhost:{port}" in readme
    assert "`postgres:5432`" in readme


def test_compose_settings_pass_beacon_otels_own_validation() -> None:
    services = compose()["services"]
    postgres = services["postgres"]["environment"]
    dsn = (
        f"postgresql://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}@postgres:5432/"
        f"{postgres['POSTGRES_DB']}"
    )
    sink = load_sink_settings(container_env(services["sink"], {}))
    assert (sink.host, sink.port, sink.database_url) == ("0.0.0.0", 4320, dsn)
    # One token for both ends, the same development default everywhere.
    collector_env = container_env(services["collector"], {})
    token_default = dict(refs(load(BASE)))["BEACON_OTEL_SINK_TOKEN"]
    assert sink.token == collector_env["BEACON_OTEL_SINK_TOKEN"] == token_default
    shell = {"BEACON_OTEL_SINK_TOKEN": "t"}
    for name in ("sink", "collector"):
        assert container_env(compose(shell)["services"][name], shell)["BEACON_OTEL_SINK_TOKEN"] == "t"

    router_env = container_env(services["router"], {})
    settings = load_settings(router_env)
    assert settings.otlp_for("traces").endpoint == "http://collector:4318/v1/traces"
    assert settings.service_name == "hybrid-router" and settings.health_interval
    assert router_env["DATABASE_URL"] == dsn
    providers = providers_from_env(router_env)
    assert {p.name for p in providers} == {"golem-us", "modal-eu", "modal-ap"}
    assert {urllib.parse.urlsplit(p.endpoint).netloc for p in providers} == {"fake-providers:9001"}
    assert "beacon-otel sink migrate && exec beacon-otel sink" in services["sink"]["command"][-1]
    assert services["router"]["command"][:2] == ["beacon-otel-run", "uvicorn"]


# --- the README's examples and commands ---------------------------------------------------------------

EXAMPLES = readme_examples()


def test_the_readme_has_at_least_three_examples() -> None:
    assert len(EXAMPLES) >= 3
    destinations = {shell.get("BEACON_COLLECTOR_DESTINATION", "jaeger") for _, shell, _ in EXAMPLES}
    assert {"jaeger", "jaeger-sink", "backend"} <= destinations


@pytest.mark.parametrize(("command", "shell", "expected"), EXAMPLES, ids=[e[0][:60] for e in EXAMPLES])
def test_every_readme_example_renders_to_a_valid_config(
    command: str, shell: dict[str, str], expected: dict[tuple[str, str], list[str]]
) -> None:
    config = render_compose(shell)
    assert problems(config) == []
    assert {signal for signal, role in expected if role == "exporters"} == set(SIGNALS), command
    for (signal, role), names in expected.items():
        assert config["service"]["pipelines"][signal][role] == names, (command, signal, role)
    if "BEACON_COLLECTOR_BACKEND_ENDPOINT" in shell:
        backend = config["exporters"]["otlphttp/backend"]
        assert backend["endpoint"] == shell["BEACON_COLLECTOR_BACKEND_ENDPOINT"]
        assert isinstance(backend["headers"], dict) and backend["headers"]
    if "BEACON_OTEL_SINK_TOKEN" in shell:
        token = shell["BEACON_OTEL_SINK_TOKEN"]
        assert config["exporters"]["otlphttp/sink"]["headers"]["authorization"] == f"Bearer {token}"
        sink_env = container_env(compose(shell)["services"]["sink"], shell)
        assert sink_env["BEACON_OTEL_SINK_TOKEN"] == token


def test_the_readme_validate_commands_name_existing_files_and_the_pinned_image() -> None:
    text = re.sub(r"\s*\\\n\s*", " ", README.read_text())
    commands = [line for line in text.splitlines() if " validate " in line and "--config=" in line]
    assert len(commands) >= 3
    checked = 0
    for line in commands:
        if "docker run" in line:
            assert f"otel/opentelemetry-collector-contrib:{components.VERSION} validate" in line
        for path in re.findall(r"--config=([^\s`]+)", line):
            if "$" in path:
                continue
            local = path.replace("/etc/beacon-otel/", "collector/")
            assert (ROOT / local).is_file(), path
            checked += 1
    assert checked >= 6


# --- the sink route, end to end ------------------------------------------------------------------------


@pytest.fixture
def compose_database(postgres: PostgresServer) -> Iterator[Database]:
    """A database set up as Compose sets it up: the init script, then ``beacon-otel sink migrate``."""
    name = f"compose_{uuid.uuid4().hex[:12]}"
    postgres.psql(f"CREATE DATABASE {name}")
    database = Database(postgres, name)
    database.sql(INIT_SQL.read_text())
    assert _migrate(database).returncode == 0
    yield database
    postgres.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _schema(database: Database) -> str:
    return database.sql(
        "SELECT string_agg(format('%s %s %s %s %s', column_name, data_type, character_maximum_length, "
        "is_nullable, column_default), E'\\n' ORDER BY ordinal_position) FROM information_schema.columns "
        "WHERE table_name = 'trace_spans'"
    ) + database.sql(
        "SELECT string_agg(indexdef, E'\\n' ORDER BY indexname) FROM pg_indexes "
        "WHERE tablename = 'trace_spans'"
    )


def test_the_compose_init_script_creates_the_production_table(
    compose_database: Database, postgres: PostgresServer
) -> None:
    reference = _new_database(postgres)  # migration 0011 as tests/test_sink.py writes it
    try:
        assert _migrate(reference).returncode == 0
        assert _schema(compose_database) == _schema(reference)
    finally:
        postgres.psql(f"DROP DATABASE IF EXISTS {reference.name} WITH (FORCE)")


def _send_as_the_collector(config: Mapping[str, Any], body: bytes) -> httpx.Response:
    """What the otlphttp exporter sends for one traces batch, from its rendered settings."""
    sink = config["exporters"]["otlphttp/sink"]
    assert sink.get("compression", "gzip") == "gzip" and sink.get("encoding", "proto") == "proto"
    headers = {
        "Content-Type": "application/x-protobuf",
        "Content-Encoding": "gzip",
        "User-Agent": f"OpenTelemetry Collector Contrib/{components.VERSION} (linux/amd64)",
        **sink["headers"],
    }
    url = sink["endpoint"].rstrip("/") + "/v1/traces"
    return httpx.post(url, content=gzip.compress(body), headers=headers, timeout=10)


def test_the_sink_route_takes_what_the_collector_sends(compose_database: Database, tmp_path: Path) -> None:
    sink = _start_sink(compose_database, tmp_path)
    try:
        endpoint = sink.url.removesuffix("/v1/traces")
        trace_id = uuid.uuid4()
        body = _request(5, trace_id=trace_id.bytes).SerializeToString()

        # The Compose stack with the sink as a destination, the Collector pointed at this sink.
        shell = {
            "BEACON_COLLECTOR_DESTINATION": "jaeger-sink",
            "BEACON_OTEL_SINK_TOKEN": TOKEN,
            "BEACON_COLLECTOR_SINK_ENDPOINT": endpoint,
        }
        config = render_compose(shell)
        assert exporters(config, "traces") == ["otlp/jaeger", "otlphttp/sink"]
        response = _send_as_the_collector(config, body)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/x-protobuf"
        answer = ExportTraceServiceResponse.FromString(response.content)
        assert answer.partial_success.rejected_spans == 0
        deadline = time.monotonic() + 5
        while compose_database.count() < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        rows = compose_database.sql(
            f"SELECT service, status, count(*) FROM trace_spans WHERE trace_id = '{trace_id}' "
            "GROUP BY service, status"
        )
        assert rows == "router|completed|5"

        # The Collector's default token (BEACON_OTEL_SINK_TOKEN unset) is not the sink's: 401.
        config = render([BASE], {"BEACON_COLLECTOR_SINK_ENDPOINT": endpoint})
        assert config["exporters"]["otlphttp/sink"]["headers"]["authorization"] != f"Bearer {TOKEN}"
        refused = _send_as_the_collector(config, _request(2).SerializeToString())
        assert refused.status_code == 401
        assert compose_database.count() == 5
    finally:
        stop(sink.process)


def test_a_sink_without_the_migration_asks_the_collector_to_retry(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    """Before `beacon-otel sink migrate` the sink answers 503 with Retry-After: the exporter retries."""
    name = f"compose_{uuid.uuid4().hex[:12]}"
    postgres.psql(f"CREATE DATABASE {name}")
    database = Database(postgres, name)
    try:
        database.sql(INIT_SQL.read_text())
        sink = _start_sink(database, tmp_path)
        try:
            endpoint = sink.url.removesuffix("/v1/traces")
            config = render(
                [BASE], {"BEACON_OTEL_SINK_TOKEN": TOKEN, "BEACON_COLLECTOR_SINK_ENDPOINT": endpoint}
            )
            response = _send_as_the_collector(config, _request(1).SerializeToString())
            assert response.status_code == 503 and response.headers.get("retry-after")
            assert config["exporters"]["otlphttp/sink"]["retry_on_failure"]["enabled"] is True
        finally:
            stop(sink.process)
    finally:
        postgres.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_compose_init_script_is_mounted_where_the_postgres_image_runs_it() -> None:
    volumes = compose()["services"]["postgres"]["volumes"]
    assert "./postgres/initdb:/docker-entrypoint-initdb.d:ro" in volumes
