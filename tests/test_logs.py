"""Structured logs, end to end: a real ``beacon-otel-run`` process, its stdout parsed line by line,
and the OTLP log records and spans a real receiver got."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from beacon_otel.stack.postgres import PostgresServer
from beacon_otel.testing.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.conftest import FakeProviders
from tests.support.processes import clean_env, free_port, launch, otlp_env, stop, uvicorn_command

SERVER = 2  # OTLP SpanKind


def _providers(fakes: FakeProviders) -> str:
    return ",".join([fakes.spec("golem-us", "golem", "us-east"), fakes.spec("modal-eu", "modal", "eu-west")])


def json_lines(output: str) -> list[dict[str, Any]]:
    """Every line of the output, parsed; fails on the first line that is not a JSON object."""
    lines = []
    for number, line in enumerate(output.splitlines(), 1):
        if not line.strip():
            continue
        try:
            parsed = json.loads(line)
        except json.JSONDecodeError as error:
            raise AssertionError(f"line {number} is not JSON ({error}): {line!r}") from None
        assert isinstance(parsed, dict), f"line {number} is not an object: {line!r}"
        lines.append(parsed)
    return lines


def _server_span(spans: list[ReceivedSpan], route: str) -> ReceivedSpan:
    return next(s for s in spans if s.kind == SERVER and s.attributes.get("http.route") == route)


def test_stdout_is_json_joined_to_traces(
    receiver: OtlpReceiver, fake_providers: FakeProviders, tmp_path: Path
) -> None:
    fake_providers.set_mode("modal-eu", "fail500")
    port = free_port()
    env = otlp_env(receiver.http_endpoint, DEMO_PROVIDERS=_providers(fake_providers))
    with launch(uvicorn_command(port), env, tmp_path, port) as app:
        inference = httpx.post(
            f"{app.base_url}/inference", json={"model": "llama-3", "prompt": "hello"}, timeout=10
        )
        assert inference.json()["success"] is True
        assert app.get("/providers").status_code == 200
        assert app.get("/boom").status_code == 500
        spans = receiver.wait_for_spans(
            lambda got: (
                {"/inference", "/providers", "/boom"}
                <= {s.attributes.get("http.route") for s in got if s.kind == SERVER}
            )
        )
        records = receiver.wait_for_logs(lambda got: any(r.body == "boom failed" for r in got))
        stop(app.process)
        lines = json_lines(app.output())

    for line in lines:
        assert {"timestamp", "level", "logger", "event", "service.name"} <= line.keys(), line
        assert line["timestamp"].endswith("Z") and "T" in line["timestamp"]
        assert line["service.name"] == "hybrid-router"

    # The router's own line for the inference: its trace, its span, and its extra= fields.
    inference_span = _server_span(spans, "/inference")
    (routed,) = [line for line in lines if line["event"].startswith("Inference for llama-3")]
    assert routed["logger"] == "demo_router" and routed["level"] == "info"
    assert routed["trace_id"] == inference_span.trace_id
    assert routed["span_id"] == inference_span.span_id
    assert routed["model"] == "llama-3" and routed["provider"] == "golem-us"

    # uvicorn's access lines are JSON too, one per request, with searchable fields.
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    by_path = {line["url.path"]: line for line in access}
    assert by_path["/inference"]["trace_id"] == inference_span.trace_id
    assert by_path["/inference"]["http.response.status_code"] == 200
    assert by_path["/inference"]["http.request.method"] == "POST"
    assert by_path["/boom"]["http.response.status_code"] == 500
    assert len([line for line in access if line["url.path"] == "/boom"]) == 1, "no duplicate lines"
    assert any(line["logger"] == "uvicorn.error" and "Application startup" in line["event"] for line in lines)

    # logger.exception: structured exception fields, not a text blob.
    (boom,) = [line for line in lines if line["event"] == "boom failed"]
    assert boom["level"] == "error"
    assert boom["exception.type"] == "RuntimeError"
    assert boom["exception.message"] == "kaboom"
    assert 'raise RuntimeError("kaboom")' in boom["exception.stacktrace"]
    assert boom["trace_id"] == _server_span(spans, "/boom").trace_id

    # The swallowed provider failure: a warning naming the exception, and a span event saying why.
    providers_span = _server_span(spans, "/providers")
    failed = [
        line
        for line in lines
        if line["level"] == "warning" and line.get("provider") == "modal-eu" and line.get("trace_id")
    ]
    assert failed and failed[-1]["region"] == "eu-west"
    assert failed[-1]["exception.type"] == "httpx.HTTPStatusError"
    events = [attributes for name, attributes in providers_span.events if name == "log"]
    assert any(
        event["log.severity"] == "WARNING"
        and event["exception.type"] == "httpx.HTTPStatusError"
        and "modal-eu" in event["log.message"]
        for event in events
    ), providers_span.events

    # OTLP log records: trace context, severity, typed attributes.
    (otlp_routed,) = [r for r in records if str(r.body).startswith("Inference for llama-3")]
    assert otlp_routed.trace_id == inference_span.trace_id
    assert otlp_routed.span_id == inference_span.span_id
    assert otlp_routed.severity_text == "INFO" and otlp_routed.severity_number == 9
    assert otlp_routed.attributes["model"] == "llama-3"
    assert otlp_routed.scope == "demo_router"
    assert otlp_routed.resource["service.name"] == "hybrid-router"
    # Access lines are printed, not exported: each request's server span carries the same facts.
    assert not [r for r in records if r.scope == "uvicorn.access"]
    otlp_boom = next(r for r in records if r.body == "boom failed")
    assert otlp_boom.severity_number == 17
    assert otlp_boom.attributes["exception.type"] == "RuntimeError"


SECRETS = {
    "api_key": "SECRET1apikey",
    "bearer": "SECRET2bearer",
    "dsn_password": "SECRET3dsnpass",
    "log_token": "SECRET4logtoken",
    # Issue 16, item 4: each of these reached the exported bytes.
    "tracestate": "SECRET5tracestate",
    "encoded_query_key": "SECRET6encodedkey",
    "nested_query": "SECRET7nestedquery",
    "path_parameter": "SECRET8jsessionid",
    "authorization_scheme": "SECRET9authscheme",
    "pem_body": "SECRET10pembody",
    "bytes_repr": "SECRET11bytesrepr",
    "next_line": "SECRET12nextline",
    "dsn_unescaped": "SECRET13dsnslash",  # inside the password p/...#w?d
    "pw": "SECRET14pw",
    "pass": "SECRET15pass",
    "sessionid": "SECRET16sessionid",
}
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


def test_planted_secrets_never_leave_the_process(
    receiver: OtlpReceiver, fake_providers: FakeProviders, postgres: PostgresServer, tmp_path: Path
) -> None:
    fake_providers.set_mode("modal-eu", "fail500")  # its error message quotes the URL and its api_key
    dsn = postgres.dsn.replace("postgres@", f"postgres:{SECRETS['dsn_password']}@")
    port = free_port()
    env = otlp_env(
        receiver.http_endpoint,
        DEMO_PROVIDERS=_providers(fake_providers),
        DEMO_PROVIDER_API_KEY=SECRETS["api_key"],
        DEMO_PROVIDER_TOKEN=SECRETS["bearer"],
        DATABASE_URL=dsn,
        BEACON_OTEL_EXPORT_ACCESS_LOGS="true",  # more exported text to search for the secrets
    )
    with launch(uvicorn_command(port), env, tmp_path, port) as app:
        assert app.get("/providers").status_code == 200
        # A caller's tracestate with a secret-looking member; the health checks pass it on.
        incoming = {
            "traceparent": f"00-{TRACE_ID}-b7ad6b7169203331-01",
            "tracestate": f"vendor=abc, password={SECRETS['tracestate']}",
        }
        assert app.get("/providers", headers=incoming).status_code == 200
        forwarded = fake_providers.state()["golem-us"]["last_headers"]
        assert isinstance(forwarded, dict)
        propagated = forwarded["tracestate"]
        # A percent-encoded name, a query string encoded inside a parameter, a path parameter.
        assert app.get(f"/health?api%5Fkey={SECRETS['encoded_query_key']}").status_code == 200
        assert app.get(f"/health?next=%2Fcb%3Ftoken%3D{SECRETS['nested_query']}%26x%3D1").status_code == 200
        app.get(f"/health;jsessionid={SECRETS['path_parameter']}")
        response = httpx.post(f"{app.base_url}/inference", json={"model": "m", "prompt": "p"}, timeout=10)
        assert response.json()["success"] is True
        spans = receiver.wait_for_spans(
            lambda got: (
                any(s.name.startswith("INSERT") for s in got)
                and any(s.trace_id == TRACE_ID and s.kind == SERVER for s in got)
                and any("jsessionid" in str(s.attributes.get("url.path")) for s in got)
            )
        )
        records = receiver.wait_for_logs(
            lambda got: (
                any("Connecting to database" in str(r.body) for r in got)
                and any(r.attributes.get("url.path") == "/inference" for r in got)
                and any("jsessionid" in str(r.attributes.get("url.path")) for r in got)
            )
        )
        stop(app.process)
        app_output = app.output()
    # Asked for, access lines are exported too, with typed attributes.
    otlp_access = next(r for r in records if r.attributes.get("url.path") == "/inference")
    assert otlp_access.scope == "uvicorn.access"
    assert otlp_access.attributes["http.response.status_code"] == 200, "an int stays an int"
    assert (
        fake_providers.state()["golem-us"]["last_headers"]["authorization"] == f"Bearer {SECRETS['bearer']}"
    )

    # A plain script: stdlib messages and structlog fields holding secrets in every shape the
    # scrubber knows (issue 16, item 4: the ones it missed).
    pem = (
        "-----BEGIN RSA PRIV" "ATE KEY" "-----\n"
        f"MIIEpAIBAAKCAQEA{SECRETS['pem_body']}\nQ2xvdWQ=\n"
        "-----END RSA PRIV" "ATE KEY" "-----"
    )
    messages = [
        f"calling the bank with token={SECRETS['log_token']}",
        f"provider auth authorization=Token {SECRETS['authorization_scheme']} user=bob",
        f"loaded private_key={pem}",
        f"form fields password:\n{SECRETS['next_line']}",
        f"connecting to postgresql://router:p/{SECRETS['dsn_unescaped']}#w?d@db.internal:5432/app",
        f"legacy pw={SECRETS['pw']} sessionid={SECRETS['sessionid']} passport=P1234 compass=1 PWD=/srv/app",
        f'body {{"pass": "{SECRETS["pass"]}"}}',
    ]
    script = (
        "import logging, structlog\n"
        "logging.basicConfig(level=logging.INFO)\n"
        "log = logging.getLogger('payments')\n"
        f"for message in {messages!r}:\n"
        "    log.info(message)\n"
        f"log.info('settings %r', {{'password': {SECRETS['bytes_repr'].encode()!r}}})\n"
        f"structlog.get_logger('payments').info('bank auth', token={SECRETS['log_token']!r}, "
        f"**{{'pass': {SECRETS['pass']!r}}})\n"
    )
    result = subprocess.run(
        ["beacon-otel-run", "python", "-c", script],
        env=otlp_env(receiver.http_endpoint),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    receiver.wait_for_logs(lambda got: any(r.body == "bank auth" for r in got))

    exported = b"".join(receiver.raw_bodies())
    printed = app_output + result.stdout + result.stderr
    for name, secret in SECRETS.items():
        assert secret not in printed, f"{name} printed"
        assert secret.encode() not in exported, f"{name} exported over OTLP"

    # ...and the places that held them are still there, marked as scrubbed.
    lines = json_lines(app_output)
    # tracestate: passed on downstream unchanged (W3C), exported with the member's value hidden.
    assert propagated == f"vendor=abc,password={SECRETS['tracestate']}"
    assert b"vendor=abc,password=[scrubbed]" in exported
    traced = [s for s in spans if s.trace_id == TRACE_ID]
    assert {s.kind for s in traced} >= {SERVER, 3}, "the caller's trace went on to the providers"
    # Encoded query names and queries, and path parameters: in the access lines printed and
    # exported, and in the server span.
    access_lines = {
        (line["url.path"], line.get("url.query")) for line in lines if line["logger"] == "uvicorn.access"
    }
    exported_access = {
        (r.attributes.get("url.path"), r.attributes.get("url.query"))
        for r in records
        if r.scope == "uvicorn.access"
    }
    for place in (access_lines, exported_access):
        assert ("/health", "api%5Fkey=[scrubbed]") in place
        assert ("/health", "next=%2Fcb%3Ftoken%3D[scrubbed]%26x%3D1") in place
        assert ("/health;jsessionid=[scrubbed]", None) in place
    assert any(
        line["event"].endswith('"GET /health;jsessionid=[scrubbed] HTTP/1.1" 404')
        for line in lines
        if line["logger"] == "uvicorn.access"
    )
    assert "/health;jsessionid=[scrubbed]" in {
        s.attributes.get("url.path") for s in spans if s.kind == SERVER
    }
    assert any(
        "token=[scrubbed]" in line["event"]
        for line in lines
        if line["event"].startswith("Provider credentials")
    )
    assert any(
        "postgresql://postgres:[scrubbed]@" in line["event"] for line in lines if "database" in line["event"]
    )
    assert any("api_key=[scrubbed]" in line["event"] for line in lines if line["logger"] == "httpx")
    script_lines = json_lines(result.stdout)
    assert [line["event"] for line in script_lines if line["logger"] == "payments"] == [
        "calling the bank with token=[scrubbed]",
        "provider auth authorization=[scrubbed] user=bob",
        "loaded private_key=[scrubbed]",
        "form fields password:\n[scrubbed]",
        "connecting to postgresql://router:[scrubbed]@db.internal:5432/app",
        "legacy pw=[scrubbed] sessionid=[scrubbed] passport=P1234 compass=1 PWD=/srv/app",
        'body {"pass": "[scrubbed]"}',
        "settings {'password': b'[scrubbed]'}",
        "bank auth",
    ]
    assert script_lines[-1]["token"] == "[scrubbed]"
    assert script_lines[-1]["pass"] == "[scrubbed]"
    health_urls = [
        str(s.attributes.get("url.full") or s.attributes.get("http.url"))
        for s in receiver.spans()
        if "/health" in str(s.attributes.get("url.full") or s.attributes.get("http.url"))
    ]
    assert health_urls and all("api_key=[scrubbed]" in url for url in health_urls), health_urls


def test_structlog_lines_carry_bound_fields_and_trace_ids(receiver: OtlpReceiver, tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(
        "import structlog\n"
        "from opentelemetry import trace\n"
        "log = structlog.get_logger()\n"
        "structlog.contextvars.bind_contextvars(job_id='job-7')\n"
        "with trace.get_tracer('job').start_as_current_span('run') as span:\n"
        "    log.bind(provider='golem-us', attempt=2).warning('provider slow', latency_s=1.5)\n"
        "    ids = span.get_span_context()\n"
        "    print('IDS', format(ids.trace_id, '032x'), format(ids.span_id, '016x'))\n"
        "log.debug('hidden at the default level')\n"
    )
    result = subprocess.run(
        ["beacon-otel-run", "python", str(script)],
        env=otlp_env(receiver.http_endpoint),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    ids_line = next(line for line in result.stdout.splitlines() if line.startswith("IDS "))
    _, trace_id, span_id = ids_line.split()
    lines = json_lines("\n".join(line for line in result.stdout.splitlines() if not line.startswith("IDS ")))
    (slow,) = lines
    assert slow["event"] == "provider slow" and slow["level"] == "warning"
    assert slow["logger"] == "__main__"
    assert (slow["trace_id"], slow["span_id"]) == (trace_id, span_id)
    assert (slow["provider"], slow["attempt"], slow["latency_s"], slow["job_id"]) == (
        "golem-us",
        2,
        1.5,
        "job-7",
    )

    records = receiver.wait_for_logs(lambda got: any(r.body == "provider slow" for r in got))
    (record,) = [r for r in records if r.body == "provider slow"]
    assert record.attributes == {"provider": "golem-us", "attempt": 2, "latency_s": 1.5, "job_id": "job-7"}
    assert record.trace_id == trace_id
    (span,) = receiver.wait_for_spans(lambda got: any(s.name == "run" for s in got))
    assert [name for name, _ in span.events] == ["log"]


def test_console_format_and_level_from_the_environment(tmp_path: Path) -> None:
    script = (
        "import logging\n"
        "logging.basicConfig(level=logging.INFO)\n"
        "log = logging.getLogger('router')\n"
        "log.info('not shown at WARNING')\n"
        "log.warning('provider down', extra={'provider': 'modal-ap'})\n"
    )
    result = subprocess.run(
        ["beacon-otel-run", "python", "-c", script],
        env=clean_env(
            OTEL_TRACES_EXPORTER="none",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
            BEACON_OTEL_LOG_FORMAT="console",
            BEACON_OTEL_LOG_LEVEL="warning",
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert "provider down" in line and "provider=modal-ap" in line and "warning" in line
    assert "\x1b[" not in line, "no colours when stdout is not a terminal"


def test_log_format_none_leaves_logging_alone(tmp_path: Path) -> None:
    script = "import logging\nlogging.basicConfig(level=logging.INFO, format='%(levelname)s|%(message)s')\n"
    script += "logging.getLogger('x').info('plain')\n"
    result = subprocess.run(
        ["beacon-otel-run", "python", "-c", script],
        env=clean_env(
            OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", BEACON_OTEL_LOG_FORMAT="none"
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "INFO|plain"


SENTRY_SCRIPT = """
import logging, json, sys
import sentry_sdk
from sentry_sdk.transport import Transport

captured = []

class MemoryTransport(Transport):
    def capture_envelope(self, envelope):
        for item in envelope.items:
            if item.type == "event":
                captured.append(item.payload.json)

sentry_sdk.init(dsn="https://public@sentry.example/1", transport=MemoryTransport, default_integrations=True)
logging.basicConfig(level=logging.INFO)
log = logging.getLogger("router")
log.info("before the failure", extra={"provider": "modal-ap"})
try:
    {}["missing"]
except KeyError:
    log.exception("provider lookup failed")
sentry_sdk.flush()
events = [
    (e["logentry"]["message"], e["exception"]["values"][0]["type"], e["breadcrumbs"]["values"][-1]["message"])
    for e in captured
]
print(json.dumps({"sentry_events": events}), file=sys.stderr)
"""


def test_sentry_keeps_capturing_errors(tmp_path: Path) -> None:
    result = subprocess.run(
        ["beacon-otel-run", "python", "-c", SENTRY_SCRIPT],
        env=clean_env(OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    sentry = json.loads(result.stderr.strip().splitlines()[-1])
    assert sentry["sentry_events"] == [["provider lookup failed", "KeyError", "before the failure"]]
    lines = json_lines(result.stdout)
    assert [line["event"] for line in lines] == ["before the failure", "provider lookup failed"]
    assert lines[1]["exception.type"] == "KeyError"


def test_library_use_without_the_launcher(receiver: OtlpReceiver) -> None:
    script = (
        "import beacon_otel\n"
        "assert beacon_otel.configure() is not None\n"
        "assert beacon_otel.configure() is not None  # once per process\n"
        "import logging\n"
        "from opentelemetry import trace\n"
        "with trace.get_tracer('lib').start_as_current_span('job'):\n"
        "    logging.getLogger('lib').warning('configured by hand', extra={'step': 1})\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=otlp_env(receiver.http_endpoint),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    (line,) = json_lines(result.stdout)
    assert line["event"] == "configured by hand" and line["step"] == 1 and len(line["trace_id"]) == 32
    records = receiver.wait_for_logs(lambda got: any(r.body == "configured by hand" for r in got))
    assert records[-1].trace_id == line["trace_id"]


def test_console_exporters_print_one_scrubbed_line_each(tmp_path: Path) -> None:
    """Console export: spans and OpenTelemetry Logs API records as one scrubbed JSON line each;
    the pipeline's own records are printed once, not a second time as console exports."""
    script = (
        "import logging\n"
        "from opentelemetry import trace\n"
        "from opentelemetry._logs import get_logger\n"
        "with trace.get_tracer('t').start_as_current_span('GET /x', attributes={'url.full': "
        "'http://h/x?api_key=SECRET1'}):\n"
        "    logging.getLogger('app').warning('calling with token=SECRET2')\n"
        "    get_logger('direct').emit(\n"
        "        body='password=SECRET3', attributes={'authorization': 'Bearer SECRET4'}\n"
        "    )\n"
    )
    result = subprocess.run(
        ["beacon-otel-run", "python", "-c", script],
        env=clean_env(
            OTEL_TRACES_EXPORTER="console",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="console",
            OTEL_BLRP_SCHEDULE_DELAY="100",
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = json_lines(result.stdout)
    assert all(f"SECRET{n}" not in result.stdout + result.stderr for n in range(1, 5)), result.stdout
    (span,) = [line for line in lines if line.get("name") == "GET /x"]
    assert span["attributes"]["url.full"] == "http://h/x?api_key=[scrubbed]"
    (app,) = [line for line in lines if line.get("logger") == "app"]
    assert app["event"] == "calling with token=[scrubbed]"
    assert [line for line in lines if line.get("body", "").startswith("calling")] == [], "printed once"
    (direct,) = [line for line in lines if "body" in line]
    assert direct["body"] == "password=[scrubbed]"
    assert direct["attributes"]["authorization"] == "[scrubbed]"
