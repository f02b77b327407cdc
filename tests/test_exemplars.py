"""Exemplars on beacon-otel's HTTP request durations, following ``OTEL_METRICS_EXEMPLAR_FILTER``.

Three levels: the aggregation through an SDK reader (what each export carries); the aggregation
and the SDK's own histogram (the fallback) fed the same requests and exported over OTLP to a real
receiver, which must get the same exemplars from both; and ``beacon-otel-run`` serving the demo
router, whose exports must carry the ids of the very spans the receiver got.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    MetricExporter,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.export import Histogram as HistogramData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, TraceFlags

from beacon_otel.config_warnings import configuration_warnings
from beacon_otel.export.added_metrics import WithHttpMetrics
from beacon_otel.instrumentation.exemplars import EXEMPLAR_FILTERS, ExemplarFilterName, sdk_exemplar_filter
from beacon_otel.instrumentation.http_aggregation import FastHttpMetrics
from beacon_otel.instrumentation.http_metrics_sdk import SdkClientMetrics, SdkServerMetrics
from beacon_otel.instrumentation.http_series import (
    CLIENT_DURATION_NAME,
    CLIENT_SCOPE_NAME,
    DURATION_NAME,
    SCOPE_NAME,
    ClientSeriesKey,
    SeriesKey,
)
from beacon_otel.settings import exemplar_filter_named, load_settings
from beacon_otel.testing.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.conftest import FakeProviders
from tests.support.metrics import CapturingExporter
from tests.support.processes import free_port, launch, otlp_env, uvicorn_command

RESOURCE = Resource({"service.name": "exemplar-test"})
KEY: SeriesKey = ("GET", "http", "/a", 200, None)
OTHER_KEY: SeriesKey = ("POST", "http", "/b", 500, "500")
CLIENT_KEY: ClientSeriesKey = ("GET", "provider.example", 443, 200, None)
DELTA: dict[type, AggregationTemporality] = {Histogram: AggregationTemporality.DELTA}


def span(trace_id: int, span_id: int, sampled: bool = True) -> Span:
    """A span as the instrumentations hold one: only its context matters here."""
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    return NonRecordingSpan(SpanContext(trace_id, span_id, is_remote=False, trace_flags=flags))


SAMPLED = span(0xA1, 0xB1)
SAMPLED_2 = span(0xA2, 0xB2)
UNSAMPLED = span(0xA3, 0xB3, sampled=False)


class Pipeline(NamedTuple):
    fast: FastHttpMetrics
    readers: list[PeriodicExportingMetricReader]
    exporters: list[CapturingExporter]

    def points(self, name: str = DURATION_NAME, index: int = 0) -> dict[str, HistogramDataPoint]:
        """One collection by reader ``index``: the duration points by route (or server address)."""
        self.readers[index].collect()
        found: dict[str, HistogramDataPoint] = {}
        for resource_metrics in self.exporters[index].exports[-1].resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == name:
                        assert isinstance(metric.data, HistogramData)
                        for point in metric.data.data_points:
                            assert isinstance(point, HistogramDataPoint)
                            attributes = dict(point.attributes or {})
                            label = attributes.get("http.route", attributes.get("server.address"))
                            found[str(label or attributes)] = point
        return found


_providers: list[MeterProvider] = []


@pytest.fixture(autouse=True)
def _shut_down_providers() -> Iterator[None]:
    yield
    while _providers:
        _providers.pop().shutdown()


def pipeline(
    exemplar_filter: ExemplarFilterName = "trace_based",
    *temporalities: dict[type, AggregationTemporality] | None,
    series_limit: int = 2000,
) -> Pipeline:
    """As ``build_telemetry`` wires it, with readers that export only when asked."""
    fast = FastHttpMetrics(
        RESOURCE,
        InstrumentationScope(SCOPE_NAME, "1"),
        exemplar_filter=exemplar_filter,
        series_limit=series_limit,
    )
    exporters = [CapturingExporter(t) for t in temporalities or (None,)]
    readers = [
        PeriodicExportingMetricReader(WithHttpMetrics(e, fast), export_interval_millis=math.inf)
        for e in exporters
    ]
    provider = MeterProvider(
        resource=RESOURCE, metric_readers=readers, exemplar_filter=sdk_exemplar_filter(exemplar_filter)
    )
    _providers.append(provider)
    fast.register_active_requests(provider, "1")  # every collection reaches the exporters
    fast.register_client_active_requests(provider, "1")
    return Pipeline(fast, readers, exporters)


def serve(
    fast: FastHttpMetrics, seconds: float, key: SeriesKey = KEY, request_span: Span | None = None
) -> None:
    fast.request_started(key[0], key[1])
    fast.request_ended(seconds, key, request_span)


def exemplar_view(point: HistogramDataPoint) -> list[tuple[Any, ...]]:
    """(value, span_id, trace_id, filtered attributes) of each exemplar, in order."""
    return [(e.value, e.span_id, e.trace_id, e.filtered_attributes) for e in point.exemplars]


# -- 1. which durations become exemplars ------------------------------------------------------------


def test_a_duration_under_a_sampled_span_is_its_buckets_exemplar() -> None:
    p = pipeline()
    before = time.time_ns()
    serve(p.fast, 0.3, request_span=SAMPLED)
    after = time.time_ns()

    point = p.points()["/a"]
    [exemplar] = point.exemplars
    assert (exemplar.value, exemplar.span_id, exemplar.trace_id) == (0.3, 0xB1, 0xA1)
    assert exemplar.filtered_attributes == {}, "the point has the measurement's attributes already"
    assert before <= exemplar.time_unix_nano <= after


def test_trace_based_keeps_no_duration_without_a_sampled_span() -> None:
    p = pipeline("trace_based")
    serve(p.fast, 0.3, request_span=UNSAMPLED)
    serve(p.fast, 0.3)  # no span at all
    serve(p.fast, 0.3, request_span=span(0, 0))  # an invalid one

    point = p.points()["/a"]
    assert point.count == 3
    assert point.exemplars == []


def test_always_on_keeps_every_duration_with_ids_only_from_a_valid_span() -> None:
    p = pipeline("always_on")
    serve(p.fast, 0.003, request_span=UNSAMPLED)  # bucket 0
    serve(p.fast, 0.3)  # bucket 7, no span
    assert exemplar_view(p.points()["/a"]) == [(0.003, 0xB3, 0xA3, {}), (0.3, None, None, {})]


def test_always_off_keeps_none() -> None:
    p = pipeline("always_off")
    serve(p.fast, 0.3, request_span=SAMPLED)
    point = p.points()["/a"]
    assert point.count == 1 and point.exemplars == []


# -- 2. what is kept: one per bucket, the last, for one interval -------------------------------------


def test_each_bucket_keeps_the_last_duration_of_the_interval_in_bucket_order() -> None:
    p = pipeline()
    serve(p.fast, 0.3, request_span=SAMPLED)  # bucket 7 (0.25, 0.5]
    serve(p.fast, 0.004, request_span=SAMPLED)  # bucket 0
    serve(p.fast, 0.45, request_span=SAMPLED_2)  # bucket 7 again: replaces 0.3
    serve(p.fast, 0.26, request_span=UNSAMPLED)  # bucket 7, not kept: 0.45 stays

    assert exemplar_view(p.points()["/a"]) == [(0.004, 0xB1, 0xA1, {}), (0.45, 0xB2, 0xA2, {})]


def test_each_collection_starts_without_exemplars_whatever_the_temporality() -> None:
    cumulative, delta = 0, 1
    p = pipeline("trace_based", None, DELTA)
    serve(p.fast, 0.3, request_span=SAMPLED)
    assert len(p.points(index=cumulative)["/a"].exemplars) == 1
    assert len(p.points(index=delta)["/a"].exemplars) == 1, "each exporter keeps its own exemplars"

    serve(p.fast, 0.02, OTHER_KEY, SAMPLED_2)
    again = p.points(index=cumulative)
    assert again["/a"].count == 1 and again["/a"].exemplars == [], "sent once, as the SDK does"
    assert exemplar_view(again["/b"]) == [(0.02, 0xB2, 0xA2, {})]


def test_client_durations_keep_their_client_span() -> None:
    p = pipeline()
    p.fast.client_request_started("GET", "provider.example", 443)
    p.fast.client_request_ended(1.2, CLIENT_KEY, SAMPLED_2)
    assert exemplar_view(p.points(CLIENT_DURATION_NAME)["provider.example"]) == [(1.2, 0xB2, 0xA2, {})]


def test_an_overflowed_duration_keeps_its_own_attributes_on_the_exemplar() -> None:
    p = pipeline(series_limit=2)  # one series, then the overflow point
    serve(p.fast, 0.3, KEY, SAMPLED)
    serve(p.fast, 0.02, OTHER_KEY, SAMPLED_2)

    points = p.points()
    overflow = points[str({"otel.metric.overflow": True})]
    assert exemplar_view(overflow) == [
        (
            0.02,
            0xB2,
            0xA2,
            {
                "http.request.method": "POST",
                "url.scheme": "http",
                "http.route": "/b",
                "http.response.status_code": 500,
                "error.type": "500",
            },
        )
    ]
    assert exemplar_view(points["/a"]) == [(0.3, 0xB1, 0xA1, {})]


# -- 3. the filter's value ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, "trace_based"), ("", "trace_based"), (" Always_On ", "always_on"), ("always_off", "always_off")],
)
def test_filter_names_read_as_the_sdk_names_them(value: str | None, expected: str) -> None:
    assert exemplar_filter_named(value) == (expected, None)


def test_an_unknown_filter_falls_back_to_the_sdk_default_with_a_warning() -> None:
    name, warning = exemplar_filter_named("bogus")
    assert name == "trace_based"
    assert warning is not None
    assert "OTEL_METRICS_EXEMPLAR_FILTER='bogus'" in warning and "default, trace_based" in warning
    environ = {"OTEL_METRICS_EXEMPLAR_FILTER": "bogus"}
    settings = load_settings(environ)
    assert settings.metrics_exemplar_filter == "trace_based"
    topics = [warning.topic for warning in configuration_warnings(settings, environ)]
    assert topics == ["exemplar-filter"], "doctor and the start-up line show the warning"


# -- 4. the same exemplars as the SDK's histogram, over OTLP ----------------------------------------------


class WireExemplar(NamedTuple):
    metric: str
    point: tuple[tuple[str, Any], ...]
    value: float
    span_id: str
    trace_id: str
    time_unix_nano: int
    filtered: tuple[tuple[str, Any], ...]


def _attributes(pairs: Any) -> tuple[tuple[str, Any], ...]:
    values = {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in pairs}
    return tuple(sorted(values.items()))


def wire_exemplars(receiver: OtlpReceiver, service: str | None = None) -> list[WireExemplar]:
    """Every histogram exemplar the receiver got (from ``service`` only, when given)."""
    found = []
    for body in receiver.raw_bodies():
        request = ExportMetricsServiceRequest.FromString(body)
        for resource_metrics in request.resource_metrics:
            resource = dict(_attributes(resource_metrics.resource.attributes))
            if service is not None and resource.get("service.name") != service:
                continue
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if not metric.HasField("histogram"):
                        continue
                    for point in metric.histogram.data_points:
                        for exemplar in point.exemplars:
                            assert exemplar.WhichOneof("value") == "as_double"
                            found.append(
                                WireExemplar(
                                    metric.name,
                                    _attributes(point.attributes),
                                    exemplar.as_double,
                                    exemplar.span_id.hex(),
                                    exemplar.trace_id.hex(),
                                    exemplar.time_unix_nano,
                                    _attributes(exemplar.filtered_attributes),
                                )
                            )
    return found


# (seconds, server or client, span): two in one bucket, one per span kind, both kinds of request.
REQUESTS: list[tuple[float, str, Span | None]] = [
    (0.3, "server", SAMPLED),
    (0.4, "server", SAMPLED_2),  # same bucket: the last one stays
    (0.004, "server", UNSAMPLED),
    (0.07, "server", None),
    (1.5, "client", SAMPLED),
    (0.009, "client", UNSAMPLED),
]


@pytest.mark.parametrize("exemplar_filter", EXEMPLAR_FILTERS)
def test_the_aggregation_sends_the_exemplars_the_sdk_histogram_sends(
    exemplar_filter: ExemplarFilterName, receiver: OtlpReceiver
) -> None:
    def provider(
        service: str, exporter: MetricExporter
    ) -> tuple[MeterProvider, PeriodicExportingMetricReader]:
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=math.inf)
        meter_provider = MeterProvider(
            resource=Resource({"service.name": service}),
            metric_readers=[reader],
            exemplar_filter=sdk_exemplar_filter(exemplar_filter),
        )
        _providers.append(meter_provider)
        return meter_provider, reader

    endpoint = receiver.http_url("metrics")
    fast = FastHttpMetrics(
        Resource({"service.name": "fast"}),
        InstrumentationScope(SCOPE_NAME, "1"),
        exemplar_filter=exemplar_filter,
    )
    fast_provider, fast_reader = provider(
        "fast", WithHttpMetrics(OTLPMetricExporter(endpoint=endpoint), fast)
    )
    fast.register_active_requests(fast_provider, "1")
    sdk_provider, sdk_reader = provider("sdk", OTLPMetricExporter(endpoint=endpoint))
    sdk_server = SdkServerMetrics(sdk_provider.get_meter(SCOPE_NAME, "1"))
    sdk_client = SdkClientMetrics(sdk_provider.get_meter(CLIENT_SCOPE_NAME, "1"))

    windows = []  # (start, end) of each request's recording by both paths
    for seconds, kind, request_span in REQUESTS:
        start = time.time_ns()
        if kind == "server":
            fast.request_started("GET", "http")
            fast.request_ended(seconds, KEY, request_span)
            sdk_server.request_ended(seconds, KEY, request_span)
        else:
            fast.client_request_started("GET", "provider.example", 443)
            fast.client_request_ended(seconds, CLIENT_KEY, request_span)
            sdk_client.client_request_ended(seconds, CLIENT_KEY, request_span)
        windows.append((start, time.time_ns()))
    fast_reader.collect()
    sdk_reader.collect()

    def comparable(exemplars: list[WireExemplar]) -> list[tuple[Any, ...]]:
        """The time replaced by the request it falls in: each path reads its own clock."""
        rows = []
        for exemplar in exemplars:
            [request] = [
                i for i, (start, end) in enumerate(windows) if start <= exemplar.time_unix_nano <= end
            ]
            rows.append((*exemplar._replace(time_unix_nano=0), request))
        return sorted(rows)

    from_sdk = comparable(wire_exemplars(receiver, "sdk"))
    from_fast = comparable(wire_exemplars(receiver, "fast"))
    assert from_fast == from_sdk
    # Request 1 replaces request 0 in their bucket; trace_based keeps those under a sampled span.
    expected_requests = {"trace_based": [1, 4], "always_on": [1, 2, 3, 4, 5], "always_off": []}
    assert sorted(row[-1] for row in from_fast) == expected_requests[exemplar_filter]
    assert {row[0] for row in from_fast} <= {DURATION_NAME, CLIENT_DURATION_NAME}


# -- 5. a real app under beacon-otel-run ----------------------------------------------------------------

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
UNSAMPLED_TRACE_ID = "5bf92f3577b34da6a3ce929d0e0e4737"
SERVER, CLIENT = 2, 3


def _traceparent(trace_id: str, sampled: bool) -> dict[str, str]:
    return {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-{'01' if sampled else '00'}"}


@pytest.mark.parametrize("exemplar_filter", [None, "always_on", "bogus"])
def test_the_demo_routers_durations_point_at_their_spans(
    exemplar_filter: str | None, receiver: OtlpReceiver, fake_providers: FakeProviders, tmp_path: Path
) -> None:
    providers = ",".join(
        [
            fake_providers.spec("golem-us", "golem", "us-east"),
            fake_providers.spec("modal-eu", "modal", "eu-west"),
        ]
    )
    variables = {} if exemplar_filter is None else {"OTEL_METRICS_EXEMPLAR_FILTER": exemplar_filter}
    port = free_port()
    with OtlpReceiver() as metrics_receiver:
        env = otlp_env(
            receiver.http_endpoint,
            DEMO_PROVIDERS=providers,
            OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=metrics_receiver.http_url("metrics"),
            **variables,
        )
        with launch(uvicorn_command(port), env, tmp_path, port) as app:
            assert app.get("/fanout", headers=_traceparent(TRACE_ID, True)).status_code == 200
            assert app.get("/health", headers=_traceparent(UNSAMPLED_TRACE_ID, False)).status_code == 200
            spans = receiver.wait_for_spans(
                lambda got: sum(1 for s in got if s.trace_id == TRACE_ID) >= 3  # server + 2 client spans
            )

            def arrived(_: object) -> bool:
                exemplars = wire_exemplars(metrics_receiver)
                wanted = {(e.metric, e.trace_id) for e in exemplars}
                return (
                    (DURATION_NAME, TRACE_ID) in wanted
                    and (CLIENT_DURATION_NAME, TRACE_ID) in wanted
                    and (exemplar_filter != "always_on" or (DURATION_NAME, UNSAMPLED_TRACE_ID) in wanted)
                )

            metrics_receiver.wait_for_metrics(arrived)
            # One more export: a duration kept by the filter would be in it by now.
            exports = metrics_receiver.request_counts()["metrics"]
            metrics_receiver.wait_for_metrics(
                lambda _: metrics_receiver.request_counts()["metrics"] > exports
            )
            output = app.output()

    exemplars = wire_exemplars(metrics_receiver)
    ours = [e for e in exemplars if e.trace_id == TRACE_ID]
    server: list[ReceivedSpan] = [s for s in spans if s.trace_id == TRACE_ID and s.kind == SERVER]
    clients = {s.span_id for s in spans if s.trace_id == TRACE_ID and s.kind == CLIENT}
    assert len(server) == 1 and len(clients) == 2
    for exemplar in ours:
        if exemplar.metric == DURATION_NAME:
            assert dict(exemplar.point)["http.route"] == "/fanout"
            assert exemplar.span_id == server[0].span_id, "the server span's own id"
        else:
            assert exemplar.metric == CLIENT_DURATION_NAME
            assert exemplar.span_id in clients, "one of the request's client spans"
            assert dict(exemplar.point)["server.address"] == "127.0.0.1"
        assert exemplar.filtered == ()
        assert exemplar.value > 0

    unsampled = [e for e in exemplars if e.trace_id == UNSAMPLED_TRACE_ID]
    if exemplar_filter == "always_on":
        assert unsampled and all(dict(e.point)["http.route"] == "/health" and e.span_id for e in unsampled)
    else:
        assert unsampled == [], "trace_based: the unsampled request's duration is no exemplar"

    warning = "OTEL_METRICS_EXEMPLAR_FILTER='bogus' is not one of trace_based, always_on, always_off"
    assert (warning in output) == (exemplar_filter == "bogus"), output[-3000:]
    if exemplar_filter == "bogus":
        assert "default, trace_based" in output
