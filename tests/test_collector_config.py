"""collector/: the Collector config, its destination switch, the Compose stack, and the sink route.

Every config is resolved by the built Collector itself (``otelcol-beacon print-config`` and
``validate``, from ``beacon-otel stack build``), so what passes here is what the Collector accepts:
the files of several ``--config`` flags merged in order, ``${env:...}`` expanded, every component
known and configured validly. On top, only the rules the Collector cannot know are checked here
(which backends take traces only, processor order, retries on). Compose itself does not run here:
its ``${NAME:-default}`` substitution and environment pass-through are simulated for the README's
examples, and the files it mounts are then resolved by the real Collector.
"""

from __future__ import annotations

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
from beacon_otel.stack.build import COLLECTOR_RELEASE
from beacon_otel.stack.postgres import PostgresServer
from tests.support.processes import ROOT, clean_env, stop
from tests.support.sink import TOKEN, Database, export_request, migrate_database, new_database, start_sink
from tests.support.stack import collector_command, effective_config

COLLECTOR = ROOT / "collector"
BASE = COLLECTOR / "otelcol.yaml"
COMPOSE = COLLECTOR / "compose.yaml"
README = COLLECTOR / "README.md"
MANIFEST = COLLECTOR / "distribution" / "manifest.yaml"
JAEGER_LOCAL = COLLECTOR / "jaeger" / "jaeger-local.yaml"
INIT_SQL = COLLECTOR / "postgres" / "initdb" / "01-trace-spans.sql"
DESTINATIONS = sorted((COLLECTOR / "destinations").glob("*.yaml"))
SAMPLINGS = sorted((COLLECTOR / "sampling").glob("*.yaml"))
CONFIG_FILES = [BASE, *DESTINATIONS, *SAMPLINGS]
# Jaeger v2's module release and the Jaeger release (and image tag) it is.
JAEGER_MODULE_VERSION, JAEGER_RELEASE = "v1.75.0", "2.12.0"

KINDS = ("receivers", "processors", "exporters", "extensions", "connectors")
SIGNALS = ("traces", "metrics", "logs")
NETWORK_EXPORTER_TYPES = ("otlp_grpc", "otlp_http")
# Backends that take one signal only: the Collector cannot know it, Jaeger and the sink refuse others.
ONLY_SIGNAL = {"otlp_grpc/jaeger": "traces", "otlp_http/sink": "traces"}
# Ports the Jaeger v2 image listens on (its Dockerfile sets JAEGER_LISTEN_HOST=0.0.0.0).
JAEGER_PORTS = {4317, 4318, 16686}

ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
COMPOSE_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


# --- the files, and what the built Collector makes of them -----------------------------------------


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text()) or {}


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


def render(files: list[Path], env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The effective config of the built Collector started with ``files`` and only ``env`` set."""
    return effective_config(files, clean_env(**(env or {})))


def validate(files: list[Path], env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """The built Collector's ``validate``: (exit code, its error output)."""
    result = collector_command("validate", files, clean_env(**(env or {})))
    return result.returncode, result.stderr


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


# --- what the Collector cannot check ---------------------------------------------------------------


def problems(config: Mapping[str, Any]) -> list[str]:
    """Our rules over an effective config: traces-only backends in traces pipelines only,
    memory_limiter first and batch last, retries and queues on for every network exporter."""
    found = []
    for pipeline_name, pipeline in config["service"]["pipelines"].items():
        signal = pipeline_name.split("/")[0]
        for name in pipeline.get("exporters") or []:
            only = ONLY_SIGNAL.get(name)
            if only is not None and only != signal:
                found.append(f"pipeline {pipeline_name} exporters: {name!r} takes {only} only")
            found += _exporter_problems(name, config["exporters"].get(name))
        processors = pipeline.get("processors") or []
        if processors[:1] != ["memory_limiter"] or processors[-1:] != ["batch"]:
            found.append(f"pipeline {pipeline_name}: processors must run memory_limiter first, batch last")
    return found


def _exporter_problems(name: str, settings: Mapping[str, Any] | None) -> list[str]:
    if settings is None or name.split("/")[0] not in NETWORK_EXPORTER_TYPES:
        return []
    found = []
    if (settings.get("retry_on_failure") or {}).get("enabled") is not True:
        found.append(f"exporter {name!r}: retry_on_failure must be enabled")
    if not settings.get("sending_queue"):  # an optional block since 0.13x: present means on
        found.append(f"exporter {name!r}: sending_queue must be enabled")
    return found


def header_map(headers: Any) -> dict[str, str]:
    """An exporter's headers as the Collector prints them (a list of name/value pairs) as a dict."""
    if isinstance(headers, dict):
        return headers
    return {pair["name"]: pair["value"] for pair in headers or []}


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


# --- the config files -------------------------------------------------------------------------------


def test_every_yaml_under_collector_is_known() -> None:
    files = sorted(COLLECTOR.rglob("*.yaml"))
    assert {BASE, COMPOSE, MANIFEST, JAEGER_LOCAL, *DESTINATIONS, *SAMPLINGS} == set(files)
    for path in CONFIG_FILES:
        assert set(load(path)) <= {*KINDS, "service"}, path


def test_the_base_config_alone_is_valid() -> None:
    assert validate([BASE]) == (0, "")
    config = render([BASE])
    assert problems(config) == []
    assert config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "0.0.0.0:4318"
    assert {"otlp_grpc/jaeger", "otlp_http/sink", "otlp_http/backend", "debug", "prometheus"} <= set(
        config["exporters"]
    )
    assert config["service"]["extensions"] == ["health_check"]
    assert config["service"]["pipelines"]["metrics"]["receivers"] == ["otlp", "httpcheck"]
    targets = [target["endpoint"] for target in config["receivers"]["httpcheck"]["targets"]]
    assert targets == ["http://router:8080/health", "http://router:8080/ready"]


@pytest.mark.parametrize("sampling", SAMPLINGS, ids=lambda path: path.stem)
@pytest.mark.parametrize("destination", DESTINATIONS, ids=lambda path: path.stem)
def test_every_destination_and_sampling_combination_passes_the_collectors_validate(
    destination: Path, sampling: Path
) -> None:
    code, errors = validate([BASE, destination, sampling], backend_env())
    assert code == 0, errors
    assert problems(render([BASE, destination, sampling], backend_env())) == []


def test_our_rules_catch_what_the_collector_accepts() -> None:
    config = render([BASE])
    config["service"]["pipelines"]["metrics"]["processors"] = ["batch", "memory_limiter"]
    config["service"]["pipelines"]["logs"]["exporters"] = ["otlp_http/sink"]
    config["exporters"]["otlp_grpc/jaeger"]["sending_queue"] = None
    found = "\n".join(problems(config))
    for expected in (
        "memory_limiter first",
        "'otlp_http/sink' takes traces only",
        "sending_queue must be enabled",
    ):
        assert expected in found, found


def test_the_collector_refuses_what_a_broken_environment_gives_it(tmp_path: Path) -> None:
    for name in ("backend", "backend-sink"):  # no endpoint: refused, not exporting nowhere
        code, errors = validate([BASE, COLLECTOR / "destinations" / f"{name}.yaml"])
        assert code != 0 and "otlp_http/backend" in errors, errors
    code, errors = validate([BASE], {"BEACON_COLLECTOR_HEALTH_URL": ""})
    assert code != 0 and "httpcheck" in errors, errors
    code, errors = validate([BASE], {"BEACON_COLLECTOR_CHECK_INTERVAL": "soon"})
    assert code != 0 and "collection_interval" in errors, errors
    code, errors = validate(
        [BASE, COLLECTOR / "sampling" / "on.yaml"], {"BEACON_COLLECTOR_DECISION_WAIT": "x"}
    )
    assert code != 0 and "decision_wait" in errors, errors


def test_destination_files_change_only_exporters_and_the_backend() -> None:
    for path in DESTINATIONS:
        config = load(path)
        assert set(config.get("exporters", {})) <= {"otlp_http/backend"}, path
        for pipeline in config["service"]["pipelines"].values():
            assert set(pipeline) == {"exporters"}, path


def test_the_jaeger_destination_and_sampling_off_are_the_base_config() -> None:
    base = render([BASE])
    assert (
        render([BASE, COLLECTOR / "destinations" / "jaeger.yaml", COLLECTOR / "sampling" / "off.yaml"])
        == base
    )


def test_backend_headers_come_from_one_variable_as_a_map() -> None:
    env = backend_env(BEACON_COLLECTOR_BACKEND_HEADERS='{"x-honeycomb-team": "abc", authorization: Bearer x}')
    config = render([BASE, COLLECTOR / "destinations" / "backend.yaml"], env)
    backend = config["exporters"]["otlp_http/backend"]
    assert backend["endpoint"] == "https://otlp.example.com"
    assert header_map(backend["headers"]) == {"x-honeycomb-team": "abc", "authorization": "Bearer x"}
    for unset_or_empty in ({}, {"BEACON_COLLECTOR_BACKEND_HEADERS": ""}):
        assert (
            validate([BASE, COLLECTOR / "destinations" / "backend.yaml"], backend_env(**unset_or_empty))[0]
            == 0
        )


def test_tail_sampling_is_off_by_default_and_keeps_errors_failed_checks_and_slow_traces_when_on() -> None:
    assert "tail_sampling" not in render_compose({})["service"]["pipelines"]["traces"]["processors"]
    config = render_compose({"BEACON_COLLECTOR_SAMPLING": "on"})
    traces = config["service"]["pipelines"]["traces"]["processors"]
    assert traces == ["memory_limiter", "resource", "tail_sampling", "batch"]
    # print-config drops the policies' own fields, so they are read from the file; the Collector
    # has validated them above, and tests/test_stack.py shows what they keep.
    sampling = load(COLLECTOR / "sampling" / "on.yaml")["processors"]["tail_sampling"]
    policies = {policy["type"]: policy for policy in sampling["policies"]}
    assert policies["status_code"]["status_code"]["status_codes"] == ["ERROR"]
    assert policies["boolean_attribute"]["boolean_attribute"] == {
        "key": "beacon.provider.healthy",
        "value": False,
    }
    assert policies["ottl_condition"]["ottl_condition"]["span"] == ['span.attributes["error.type"] != nil']
    assert policies["latency"]["latency"]["threshold_ms"] == "${env:BEACON_COLLECTOR_SLOW_TRACE_MS:-2000}"
    assert sampling["policies"][-1]["type"] == "probabilistic"
    # The attributes the policies test are the ones the distro sets on provider checks.
    telemetry = (ROOT / "beacon_otel" / "providers" / "telemetry.py").read_text()
    assert 'set_attribute("beacon.provider.healthy"' in telemetry
    assert 'set_attribute("error.type"' in telemetry


# --- the pinned versions, the variables -------------------------------------------------------------


def test_one_collector_release_everywhere() -> None:
    """The manifest's modules, the Builder, the compose image and the docs name one release."""
    manifest = yaml.safe_load(MANIFEST.read_text())
    versions = {
        entry["gomod"].split()[1]
        for kind in ("receivers", "processors", "exporters", "extensions")
        for entry in manifest[kind]
        if entry["gomod"].startswith(("go.opentelemetry.io/", "github.com/open-telemetry/"))
    }
    assert versions == {f"v{COLLECTOR_RELEASE}"}
    assert manifest["dist"]["version"] == COLLECTOR_RELEASE
    assert manifest["telemetry"]["gomod"].split()[1] == f"v{COLLECTOR_RELEASE}"
    collector = compose()["services"]["collector"]
    assert collector["image"] == f"otel/opentelemetry-collector-contrib:{COLLECTOR_RELEASE}"
    for text in (BASE.read_text(), README.read_text()):
        assert f"Collector {COLLECTOR_RELEASE}" in text or f"Collector Contrib {COLLECTOR_RELEASE}" in text
    assert f"{JAEGER_MODULE_VERSION}" in (COLLECTOR / "jaeger" / "go.mod").read_text()
    assert compose()["services"]["jaeger"]["image"] == f"jaegertracing/jaeger:{JAEGER_RELEASE}"


def test_the_built_collector_is_that_release_with_exactly_the_components_used() -> None:
    result = collector_command("components", [], clean_env())
    assert result.returncode == 0, result.stderr
    listing = yaml.safe_load(result.stdout)
    assert listing["buildinfo"]["version"] == COLLECTOR_RELEASE
    built = {
        kind: {c["name"] for c in listing.get(kind) or []}
        for kind in ("receivers", "processors", "exporters", "extensions")
    }
    used: dict[str, set[str]] = {kind: set() for kind in built}
    for path in CONFIG_FILES:
        for kind in built:
            used[kind] |= {name.split("/")[0] for name in load(path).get(kind) or {}}
    assert built == used


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
    references = [ref for path in CONFIG_FILES for ref in refs(load(path))]
    # Listening addresses stay the container's own (0.0.0.0): a shell's loopback address for
    # `beacon-otel stack up` would make the Collector unreachable inside the network.
    listening = {name for name, default in references if (default or "").startswith("0.0.0.0:")}
    assert len(listening) == 4
    used = {name for name, _ in references} - listening
    assert not listening & passed
    assert used <= passed, f"set in your shell but never seen by the Collector: {used - passed}"


# --- ports and names ------------------------------------------------------------------------------


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1].split("/")[0])


def _published(service: Mapping[str, Any]) -> dict[int, int]:
    """container port -> host port, each published on 127.0.0.1 only."""
    published = {}
    for entry in service.get("ports", []):
        host, host_port, container_port = entry.split(":")
        assert host == "127.0.0.1", f"{entry}: published on every interface"
        published[int(container_port)] = int(host_port)
    return published


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
    addresses = [
        d
        for d in defaults
        if re.fullmatch(r"(https?://)?[\w.-]+:\d+(/.*)?", d) and not d.startswith("0.0.0.0:")
    ]
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
        backend = config["exporters"]["otlp_http/backend"]
        assert backend["endpoint"] == shell["BEACON_COLLECTOR_BACKEND_ENDPOINT"]
        assert header_map(backend["headers"])
    if "BEACON_OTEL_SINK_TOKEN" in shell:
        token = shell["BEACON_OTEL_SINK_TOKEN"]
        assert (
            header_map(config["exporters"]["otlp_http/sink"]["headers"])["authorization"] == f"Bearer {token}"
        )
        sink_env = container_env(compose(shell)["services"]["sink"], shell)
        assert sink_env["BEACON_OTEL_SINK_TOKEN"] == token


def test_the_readme_validate_commands_name_existing_files_and_the_pinned_image() -> None:
    text = re.sub(r"\s*\\\n\s*", " ", README.read_text())
    commands = [line for line in text.splitlines() if " validate " in line and "--config=" in line]
    assert len(commands) >= 3
    checked = 0
    for line in commands:
        if "docker run" in line:
            assert f"otel/opentelemetry-collector-contrib:{COLLECTOR_RELEASE} validate" in line
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
    assert migrate_database(database).returncode == 0
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
    reference = new_database(postgres)  # migration 0011 as tests/test_sink.py writes it
    try:
        assert migrate_database(reference).returncode == 0
        assert _schema(compose_database) == _schema(reference)
    finally:
        postgres.psql(f"DROP DATABASE IF EXISTS {reference.name} WITH (FORCE)")


def _send_as_the_collector(config: Mapping[str, Any], body: bytes) -> httpx.Response:
    """What the otlphttp exporter sends for one traces batch, from its rendered settings."""
    sink = config["exporters"]["otlp_http/sink"]
    assert sink.get("compression", "gzip") == "gzip" and sink.get("encoding", "proto") == "proto"
    headers = {
        "Content-Type": "application/x-protobuf",
        "Content-Encoding": "gzip",
        "User-Agent": f"otelcol-beacon/{COLLECTOR_RELEASE} (linux/amd64)",
        **header_map(sink["headers"]),
    }
    url = sink["endpoint"].rstrip("/") + "/v1/traces"
    return httpx.post(url, content=gzip.compress(body), headers=headers, timeout=10)


def test_the_sink_route_takes_what_the_collector_sends(compose_database: Database, tmp_path: Path) -> None:
    sink = start_sink(compose_database, tmp_path)
    try:
        endpoint = sink.url.removesuffix("/v1/traces")
        trace_id = uuid.uuid4()
        body = export_request(5, trace_id=trace_id.bytes).SerializeToString()

        # The Compose stack with the sink as a destination, the Collector pointed at this sink.
        shell = {
            "BEACON_COLLECTOR_DESTINATION": "jaeger-sink",
            "BEACON_OTEL_SINK_TOKEN": TOKEN,
            "BEACON_COLLECTOR_SINK_ENDPOINT": endpoint,
        }
        config = render_compose(shell)
        assert exporters(config, "traces") == ["otlp_grpc/jaeger", "otlp_http/sink"]
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
        assert (
            header_map(config["exporters"]["otlp_http/sink"]["headers"])["authorization"] != f"Bearer {TOKEN}"
        )
        refused = _send_as_the_collector(config, export_request(2).SerializeToString())
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
        sink = start_sink(database, tmp_path)
        try:
            endpoint = sink.url.removesuffix("/v1/traces")
            config = render(
                [BASE], {"BEACON_OTEL_SINK_TOKEN": TOKEN, "BEACON_COLLECTOR_SINK_ENDPOINT": endpoint}
            )
            response = _send_as_the_collector(config, export_request(1).SerializeToString())
            assert response.status_code == 503 and response.headers.get("retry-after")
            assert config["exporters"]["otlp_http/sink"]["retry_on_failure"]["enabled"] is True
        finally:
            stop(sink.process)
    finally:
        postgres.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_compose_init_script_is_mounted_where_the_postgres_image_runs_it() -> None:
    volumes = compose()["services"]["postgres"]["volumes"]
    assert "./postgres/initdb:/docker-entrypoint-initdb.d:ro" in volumes
