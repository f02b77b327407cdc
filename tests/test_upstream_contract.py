"""The contract between beacon-otel and the upstream details it relies on.

Every private upstream name beacon-otel uses is reached through ``beacon_otel._upstream``; each
test here checks one of them against the installed releases, on real objects, and says in its
failure message what moved and where to adapt. ``.ci/upstream-newest`` runs this file on the
newest releases of the SDK, the exporters and the instrumentations. The last test keeps the
promise that the module is the only place: it parses every other module and names any private
upstream access it finds.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from beacon_otel import _upstream
from beacon_otel.export.otlp_grpc import FastGrpcLogExporter, FastGrpcSpanExporter
from beacon_otel.export.otlp_http import FastHttpSpanExporter
from beacon_otel.export.reporting import ExportReporter
from beacon_otel.export.span_encoding import SpanBatchEncoder
from beacon_otel.export.span_queue import EncodedBatchSpanProcessor
from beacon_otel.instrumentation.direct_span import DirectSpanStarter
from beacon_otel.instrumentation.fast_path import why_not_direct
from beacon_otel.settings import BatchSettings
from beacon_otel.stack.postgres import PostgresServer
from beacon_otel.testing.otlp_receiver import OtlpReceiver

PACKAGE = Path(__file__).resolve().parent.parent / "beacon_otel"
MOVED = "upstream moved it: adapt beacon_otel/_upstream.py ({})"


def _spans(count: int = 2) -> list[ReadableSpan]:
    """Finished SDK spans, for the exporters."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("contract")
    for index in range(count):
        with tracer.start_as_current_span(f"span-{index}", attributes={"index": index}):
            pass
    provider.shutdown()
    return list(memory.get_finished_spans())


class _NoExport:
    def export_payload(self, payload: bytes, count: int) -> bool:
        return True

    def shutdown(self) -> None:
        return None


def _encoded_processor() -> EncodedBatchSpanProcessor:
    return EncodedBatchSpanProcessor(_NoExport(), BatchSettings(), ExportReporter(interval=60))  # type: ignore[arg-type]


# --- names under private modules ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(_upstream._LAZY))
def test_every_name_under_a_private_module_still_imports(name: str) -> None:
    module, attribute = _upstream._LAZY[name]
    try:
        value = getattr(_upstream, name)
    except (ImportError, AttributeError) as error:
        pytest.fail(f"{module}.{attribute} is gone ({error}); " + MOVED.format("_LAZY"))
    assert value is getattr(importlib.import_module(module), attribute)


def test_the_sdks_default_resource_is_the_telemetry_sdk_one() -> None:
    attributes = _upstream.default_resource().attributes
    assert attributes.get("telemetry.sdk.language") == "python", MOVED.format("default_resource")


def test_a_configurator_built_on_the_private_base_is_run_by_its_public_configure() -> None:
    ran: list[bool] = []

    class Recording(_upstream.Configurator):
        def configure_process(self) -> None:
            ran.append(True)

    Recording().configure()
    assert ran == [True], MOVED.format(
        "_configurator: _BaseConfigurator.configure no longer calls _configure"
    )


def test_the_distro_base_configures_nothing_and_loads_instrumentors() -> None:
    distro = _upstream.Distro()
    distro.configure()  # the abstract hook is implemented: no TypeError
    assert callable(distro.load_instrumentor), MOVED.format("_distro")


def test_a_receiving_metric_reader_gets_each_collection() -> None:
    received: list[Any] = []

    class Reader(_upstream.ReceivingMetricReader):
        def receive(self, metrics_data: Any, timeout_millis: float) -> None:
            received.append(metrics_data)

        def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
            return None

    provider = MeterProvider(metric_readers=[Reader()])
    provider.get_meter("contract").create_counter("things").add(3)
    provider.force_flush()
    provider.shutdown()
    points = [
        point.value
        for data in received
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
    ]
    assert 3 in points, MOVED.format("_receiving_metric_reader: the SDK no longer calls _receive_metrics")


# --- the SDK tracer, for direct spans -------------------------------------------------------------


def test_the_tracer_exposes_what_direct_spans_read() -> None:
    limits = SpanLimits(max_attributes=7)
    provider = TracerProvider(span_limits=limits)
    processor = _encoded_processor()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("contract.scope", "1.2.3")
    internals = _upstream.tracer_internals(tracer)
    assert internals is not None, MOVED.format("tracer_internals: a tracer field is missing or renamed")
    scope, read_limits, is_enabled = internals
    assert (scope.name, scope.version) == ("contract.scope", "1.2.3")
    assert read_limits is limits
    assert is_enabled() is True
    processors = _upstream.tracer_span_processors(tracer)
    assert processors == (processor,), MOVED.format("tracer_span_processors")
    assert why_not_direct(tracer, processors) is None
    provider.shutdown()


def test_adding_a_processor_replaces_the_tuple_direct_spans_watch() -> None:
    """DirectSpanStarter notices a new processor by the tuple's identity: the SDK must replace it."""
    provider = TracerProvider()
    provider.add_span_processor(_encoded_processor())
    tracer = provider.get_tracer("contract")
    before = _upstream.tracer_span_processors(tracer)
    provider.add_span_processor(BatchSpanProcessor(HttpSpanExporter(endpoint="http://127.0.0.1:9/v1/traces")))
    after = _upstream.tracer_span_processors(tracer)
    assert after is not before and after is not None and len(after) == 2, MOVED.format(
        "tracer_span_processors"
    )
    reason = why_not_direct(tracer, after)
    assert reason is not None and "BatchSpanProcessor" in reason
    span = DirectSpanStarter(tracer).start("GET /", None, {})
    assert type(span).__module__.startswith("opentelemetry.sdk"), (
        "a second processor must turn direct spans off"
    )
    span.end()
    provider.shutdown()


def test_the_fast_path_turning_off_is_said_once(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from beacon_otel.instrumentation import fast_path

    monkeypatch.setattr(fast_path, "_told", set())  # said in this process already by another test

    provider = TracerProvider()
    provider.add_span_processor(_encoded_processor())
    tracer = provider.get_tracer("contract")
    starter = DirectSpanStarter(tracer)
    starter.start("GET /", None, {}).end()
    assert "slower path" not in capsys.readouterr().err
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    for _ in range(3):
        starter.start("GET /", None, {}).end()
    lines = [line for line in capsys.readouterr().err.splitlines() if "slower path" in line]
    assert len(lines) == 1 and "another span processor is registered: SimpleSpanProcessor" in lines[0], lines
    provider.shutdown()


def test_span_metrics_on_turn_direct_spans_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """With its internal metrics on, the SDK records span metrics; direct spans would skip them."""
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    provider = TracerProvider(meter_provider=MeterProvider())
    provider.add_span_processor(_encoded_processor())
    tracer = provider.get_tracer("contract")
    assert _upstream.tracer_internals(tracer) is None, MOVED.format("tracer_internals: _tracer_metrics")
    assert why_not_direct(tracer, _upstream.tracer_span_processors(tracer)) is not None
    provider.shutdown()


def test_a_tracer_missing_a_field_falls_back_to_sdk_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    """What an SDK release that renames a tracer field does (tracer_internals finds nothing):
    spans still go out, the SDK's way."""
    provider = TracerProvider()
    processor = _encoded_processor()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("contract")
    monkeypatch.setattr(_upstream, "tracer_internals", lambda tracer: None)
    reason = why_not_direct(tracer, _upstream.tracer_span_processors(tracer))
    assert reason is not None and "lacks a field" in reason
    span = DirectSpanStarter(tracer).start("GET /", None, {"k": "v"})
    assert type(span).__module__.startswith("opentelemetry.sdk")
    span.end()
    provider.shutdown()


def test_the_sdk_still_calls_the_span_ending_hook_that_direct_spans_check() -> None:
    ending: list[str] = []

    class Hooking(SpanProcessor):
        def _on_ending(self, span: Any) -> None:
            ending.append(span.name)

    provider = TracerProvider()
    provider.add_span_processor(Hooking())
    provider.get_tracer("contract").start_span("hooked").end()
    assert ending == ["hooked"], MOVED.format("hooks_span_ending: Span.end no longer calls _on_ending")
    assert _upstream.hooks_span_ending(Hooking())
    assert not _upstream.hooks_span_ending(_encoded_processor())


def test_bounded_attributes_hold_a_plain_dict() -> None:
    attributes = BoundedAttributes(maxlen=4, attributes={"a": 1, "b": "x"}, immutable=False)
    inner = _upstream.attribute_dict(attributes)
    assert type(inner) is dict, MOVED.format("attribute_dict: BoundedAttributes._dict")
    assert inner == {"a": 1, "b": "x"}
    attributes["c"] = True
    assert inner["c"] is True, "the dict must be the attributes' own storage, not a copy"


# --- exporters ------------------------------------------------------------------------------------


def test_a_metric_exporters_preferences_are_read_back() -> None:
    exporter = OTLPMetricExporter(
        endpoint="http://127.0.0.1:9/v1/metrics",
        preferred_temporality={Counter: AggregationTemporality.DELTA},
    )
    temporality, aggregation = _upstream.metric_exporter_preferences(exporter)
    assert temporality is not None and aggregation is not None, MOVED.format("metric_exporter_preferences")
    assert temporality[Counter] is AggregationTemporality.DELTA


def test_the_http_exporters_transport_can_be_wrapped(receiver: OtlpReceiver) -> None:
    calls: list[str] = []

    class Recording:
        def __init__(self, inner: Any, session: Any) -> None:
            self.inner, self.session = inner, session

        def __getattr__(self, name: str) -> Any:
            calls.append(name)
            return getattr(self.inner, name)

    exporter = HttpSpanExporter(endpoint=receiver.http_url("traces"))
    assert _upstream.replace_http_transport(exporter, Recording), MOVED.format("replace_http_transport")
    assert exporter.export(_spans()) is SpanExportResult.SUCCESS
    receiver.wait_for_spans(lambda spans: len(spans) == 2)
    assert calls, "the exporter did not send through the wrapped transport"
    exporter.shutdown()


def test_an_encoded_request_goes_through_the_http_exporters_client(receiver: OtlpReceiver) -> None:
    exporter = FastHttpSpanExporter(endpoint=receiver.http_url("traces"))
    payload = SpanBatchEncoder().encode(_spans(3))
    result = _upstream.http_exporter_post(exporter, payload)
    assert result is not None and result.success, MOVED.format("http_exporter_post")
    receiver.wait_for_spans(lambda spans: len(spans) == 3)
    exporter.shutdown()
    assert _upstream.http_exporter_post(exporter, payload) is None, "a shut-down exporter must not send"


def test_stop_retrying_leaves_one_attempt_over_http(receiver: OtlpReceiver) -> None:
    receiver.set_mode("unavailable")
    exporter = HttpSpanExporter(endpoint=receiver.http_url("traces"), timeout=5)
    _upstream.stop_retrying(exporter, lambda timeout: timeout)
    assert exporter.export(_spans(1)) is SpanExportResult.FAILURE
    assert receiver.request_counts()["traces"] == 1, MOVED.format("stop_retrying: the HTTP retry loop")


def test_stop_retrying_leaves_one_attempt_over_grpc(receiver: OtlpReceiver) -> None:
    receiver.set_mode("unavailable")
    exporter = FastGrpcSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True, timeout=5)
    _upstream.stop_retrying(exporter, lambda timeout: 1.5)
    assert exporter.export(_spans(1)) is SpanExportResult.FAILURE
    assert receiver.request_counts()["traces"] == 1, MOVED.format("stop_retrying: the gRPC retry loop")
    exporter.shutdown()


@pytest.mark.parametrize("signal", ["traces", "logs"])
def test_encoded_requests_go_through_the_grpc_exporters(receiver: OtlpReceiver, signal: str) -> None:
    if signal == "traces":
        exporter: Any = FastGrpcSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True)
        assert exporter.export(_spans(2)) is SpanExportResult.SUCCESS, MOVED.format("EncodedGrpcExport")
        assert exporter.export_payload(SpanBatchEncoder().encode(_spans(1)), 1) is SpanExportResult.SUCCESS
        receiver.wait_for_spans(lambda spans: len(spans) == 3)
    else:
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

        request = ExportLogsServiceRequest()
        record = request.resource_logs.add().scope_logs.add().log_records.add()
        record.body.string_value = "contract"
        exporter = FastGrpcLogExporter(endpoint=receiver.grpc_endpoint, insecure=True)
        result = exporter.export_payload(request.SerializeToString(), 1)
        assert result is _upstream.LogRecordExportResult.SUCCESS, MOVED.format("EncodedGrpcExport")
        receiver.wait_for_logs(lambda logs: len(logs) == 1)
    exporter.shutdown()


@pytest.mark.parametrize(
    "name", _upstream.EXPORTER_LOGGERS + _upstream.QUEUE_LOGGERS + _upstream.METRIC_READER_LOGGERS
)
def test_the_loggers_beacon_otel_listens_to_are_upstream_modules(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ImportError:
        pytest.fail(f"{name} is no module any more: its records would go unseen; " + MOVED.format("loggers"))
    assert module.__name__ == name


def test_a_full_batch_queue_says_queue_full() -> None:
    """beacon-otel counts dropped spans by the batch processor's warning text."""
    release = threading.Event()

    class Blocked(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            release.wait(10)
            return SpanExportResult.SUCCESS

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.WARNING)
    loggers = [logging.getLogger(name) for name in _upstream.QUEUE_LOGGERS]
    for logger in loggers:
        logger.addHandler(handler)
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Blocked(), max_queue_size=1, max_export_batch_size=1))
    tracer = provider.get_tracer("contract")
    try:
        for index in range(20):
            tracer.start_span(f"s{index}").end()
    finally:
        release.set()
        for logger in loggers:
            logger.removeHandler(handler)
        provider.shutdown()
    texts = [str(record.msg) for record in records]
    assert any(text.startswith(_upstream.QUEUE_FULL_PREFIX) for text in texts), MOVED.format(
        f"QUEUE_FULL_PREFIX; the warnings were {texts}"
    )


# --- asyncpg ----------------------------------------------------------------------------------------


def test_asyncpg_connections_cursors_and_statements_keep_their_fields(postgres: PostgresServer) -> None:
    async def check() -> None:
        connection = await asyncpg.connect(postgres.dsn)
        try:
            database, address = _upstream.asyncpg_server(connection)
            assert database == postgres.dsn.rsplit("/", 1)[-1], MOVED.format("asyncpg_server: _params")
            assert isinstance(address, tuple) and address[0] == "127.0.0.1", MOVED.format(
                "asyncpg_server: _addr"
            )
            statement = await connection.prepare("SELECT generate_series(1, 5)")
            owner, query = _upstream.asyncpg_statement_source(statement)
            assert query == "SELECT generate_series(1, 5)", MOVED.format("asyncpg_statement_source")
            assert owner is not None
            async with connection.transaction():
                iterator = connection.cursor("SELECT generate_series(1, 5)", prefetch=2).__aiter__()
                fetches = []
                for _ in range(5):
                    fetches.append(_upstream.asyncpg_iterator_will_fetch(iterator))
                    await iterator.__anext__()
            assert fetches == [True, False, True, False, True], MOVED.format(
                f"asyncpg_iterator_will_fetch: {fetches}"
            )
        finally:
            await connection.close()

    asyncio.run(check())


# --- FastAPI and uvicorn ----------------------------------------------------------------------------


def test_fastapi_says_when_an_app_traces_itself() -> None:
    import inspect

    from fastapi import FastAPI

    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        pytest.skip("this FastAPI has no built-in telemetry")
    assert _upstream.fastapi_traces_itself(FastAPI(telemetry={"tracing": True})), MOVED.format(
        "fastapi_traces_itself: FastAPI._telemetry"
    )
    assert not _upstream.fastapi_traces_itself(FastAPI(telemetry={"tracing": False}))


def test_uvicorns_httptools_protocol_has_the_hooks_the_sink_overrides() -> None:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from beacon_otel.sink.connections import ConnectionLimits, guarded_protocol

    base = _upstream.HttpToolsProtocol
    for hook in _upstream.HTTPTOOLS_PROTOCOL_HOOKS:
        assert callable(getattr(base, hook, None)), MOVED.format(f"HttpToolsProtocol.{hook}")
    config = Config(app=lambda scope, receive, send: None, http=base)
    config.load()

    async def build(protocol: type) -> Any:  # the protocol takes the running loop
        return protocol(config=config, server_state=ServerState(), app_state={})

    instance = asyncio.run(build(base))
    for attribute in _upstream.HTTPTOOLS_PROTOCOL_ATTRIBUTES:
        assert hasattr(instance, attribute) or attribute == "transport", MOVED.format(
            f"HttpToolsProtocol.{attribute}"
        )
    guarded = guarded_protocol(ConnectionLimits(10, 1024, 5.0))
    ours = {name for name in vars(guarded) if not name.startswith("__")}
    clashes = ours & (set(dir(base)) | set(vars(instance))) - set(_upstream.HTTPTOOLS_PROTOCOL_HOOKS) - {
        "__init__"
    }
    assert not clashes, f"the sink's protocol shadows uvicorn's own names: {sorted(clashes)}"
    source = ast.parse((PACKAGE / "sink" / "connections.py").read_text(encoding="utf-8"))
    fields = {
        node.attr
        for node in ast.walk(source)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
        and isinstance(node.ctx, ast.Store)
    }
    assert fields, "the scan of the sink's protocol found no fields"
    assert not fields & set(vars(instance)), (
        f"the sink's protocol overwrites uvicorn's instance fields: {sorted(fields & set(vars(instance)))}"
    )


# --- the module is the only place -------------------------------------------------------------------

# Private names of our own objects, and the standard library's documented ones.
_OWN_OR_DOCUMENTED = {"_asdict", "_replace", "_fields", "_exit", "_getframe", "_grpc_export", "_ingest"}


def _private_uses(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.module.startswith("beacon_otel"):
            names = [alias.name for alias in node.names]
            if node.module != "__future__" and (
                any(part.startswith("_") for part in node.module.split("."))
                or any(name.startswith("_") and not name.startswith("__") for name in names)
            ):
                yield f"line {node.lineno}: from {node.module} import {', '.join(names)}"
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls", "_upstream"):
                continue
            if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super":
                yield f"line {node.lineno}: {ast.unparse(node)} (a private upstream method)"
                continue
            if node.attr not in _OWN_OR_DOCUMENTED:
                yield f"line {node.lineno}: {ast.unparse(node)}"
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and node.args[1].value.startswith("_")
            and not node.args[1].value.startswith("__")
            and not node.args[1].value.startswith("_beacon_otel")
        ):
            yield f"line {node.lineno}: {ast.unparse(node)}"


def test_no_module_but_the_compatibility_module_touches_a_private_upstream_name() -> None:
    found = {
        str(path.relative_to(PACKAGE.parent)): list(_private_uses(path))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "_upstream.py"
    }
    found = {path: uses for path, uses in found.items() if uses}
    assert not found, (
        "private upstream names used outside beacon_otel/_upstream.py (move each there, with a "
        f"contract test here): {found}"
    )


def test_the_scan_finds_a_private_use() -> None:
    """The scan above must be able to fail."""
    sample = PACKAGE.parent / "tests" / "fixtures" / "private_use_sample.py.txt"
    assert list(_private_uses(sample)) == [
        "line 1: from opentelemetry.sdk._logs import LoggerProvider",
        "line 4: tracer._span_limits",
        "line 5: getattr(exporter, '_client', None)",
    ]


@pytest.mark.parametrize(
    ("variables", "reason"),
    [
        (
            {"OTEL_TRACES_EXPORTER": "otlp,console"},
            "another span processor is registered: SimpleSpanProcessor",
        ),
        ({"OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED": "true"}, "records the SDK's span metrics"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp,console", "BEACON_OTEL_LOG_FORMAT": "none"},
            "another span processor is registered: SimpleSpanProcessor",
        ),
        ({}, None),
    ],
    ids=["console exporter", "SDK span metrics", "no log lines", "fast path on"],
)
def test_an_app_says_at_start_when_its_configuration_turns_the_fast_path_off(
    receiver: OtlpReceiver, variables: dict[str, str], reason: str | None
) -> None:
    from tests.support.processes import otlp_env, run_python

    result = run_python("print('app ran')", otlp_env(receiver.http_endpoint, **variables))
    assert result.returncode == 0 and "app ran" in result.stdout, result.stderr
    said = [line for line in result.stderr.splitlines() if "slower path" in line]
    logged = [line for line in result.stdout.splitlines() if "slower path" in line]
    if reason is None:
        assert said == logged == [], result.stderr
    else:
        assert len(said) == 1 and reason in said[0], result.stderr
        if variables.get("BEACON_OTEL_LOG_FORMAT") != "none":
            assert len(logged) == 1 and '"level":"warning"' in logged[0].replace(" ", ""), result.stdout


def test_the_doctor_names_an_sdk_whose_tracer_fields_moved(monkeypatch: pytest.MonkeyPatch) -> None:
    from beacon_otel.settings import load_settings
    from beacon_otel.tools.doctor_checks import fast_path

    settings = load_settings({})
    assert fast_path(settings, {}).status == "ok"
    monkeypatch.setattr(_upstream, "tracer_internals", lambda tracer: None)
    row = fast_path(settings, {})
    assert row.status == "info" and "lacks a field direct spans read" in row.detail, row
