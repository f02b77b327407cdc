"""The fast HTTP server metrics: what the metric exporters receive through ``WithHttpMetrics``.

Each test builds its own SDK ``MeterProvider`` whose readers never export on their own
(``export_interval_millis=math.inf``); a ``reader.collect()`` is one export. No global provider is
set in this process: the one test that needs it runs in a subprocess.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.metrics import CallbackOptions
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    Metric,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    PeriodicExportingMetricReader,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.metrics.export import Histogram as HistogramData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from beacon_otel.export.added_metrics import WithHttpMetrics
from beacon_otel.instrumentation.http_aggregation import FastHttpMetrics
from beacon_otel.instrumentation.http_series import (
    DURATION_BUCKETS,
    DURATION_NAME,
    SCOPE_NAME,
    SeriesKey,
    series_attributes,
)
from tests.support.metrics import CapturingExporter

ROOT = Path(__file__).resolve().parent.parent
VERSION = "9.8.7"
ACTIVE_NAME = "http.server.active_requests"
RESOURCE = Resource({"service.name": "server-metrics-test", "service.instance.id": "one"})
OTHER_RESOURCE = Resource({"service.name": "someone-else"})

KEY_A: SeriesKey = ("GET", "http", "/a", 200, None)
KEY_B: SeriesKey = ("POST", "http", "/b", 500, "500")
ATTRS_A = {
    "http.request.method": "GET",
    "url.scheme": "http",
    "http.route": "/a",
    "http.response.status_code": 200,
}
ATTRS_B = {
    "http.request.method": "POST",
    "url.scheme": "http",
    "http.route": "/b",
    "http.response.status_code": 500,
    "error.type": "500",
}
DELTA: dict[type, AggregationTemporality] = {Histogram: AggregationTemporality.DELTA}
CUMULATIVE: dict[type, AggregationTemporality] = {Histogram: AggregationTemporality.CUMULATIVE}


@dataclass
class Pipeline:
    fast: FastHttpMetrics
    provider: MeterProvider
    exporters: list[CapturingExporter]
    wrappers: list[WithHttpMetrics]
    readers: list[PeriodicExportingMetricReader] = field(default_factory=list)

    def export(self, index: int = 0) -> MetricsData:
        """One collection by reader ``index``: what its exporter received."""
        exporter = self.exporters[index]
        before = len(exporter.exports)
        self.readers[index].collect()
        assert len(exporter.exports) == before + 1, "the reader's collection did not reach the exporter"
        return exporter.exports[-1]


_providers: list[MeterProvider] = []


@pytest.fixture(autouse=True)
def _shut_down_providers() -> Iterator[None]:
    yield
    while _providers:
        _providers.pop().shutdown()


def make_fast(resource: Resource = RESOURCE, version: str = VERSION) -> FastHttpMetrics:
    return FastHttpMetrics(resource, InstrumentationScope(SCOPE_NAME, version))


def pipeline(
    *temporalities: dict[type, AggregationTemporality] | None,
    fast: FastHttpMetrics | None = None,
    resource: Resource = RESOURCE,
    active_version: str | None = VERSION,
    extra_readers: tuple[PeriodicExportingMetricReader, ...] = (),
) -> Pipeline:
    """As ``build_telemetry`` wires it: one wrapped exporter per temporality, the active-request
    counter registered under ``active_version`` (not at all when None)."""
    fast = fast or make_fast()
    exporters = [CapturingExporter(t) for t in temporalities or (None,)]
    wrappers = [WithHttpMetrics(exporter, fast) for exporter in exporters]
    readers = [PeriodicExportingMetricReader(w, export_interval_millis=math.inf) for w in wrappers]
    provider = MeterProvider(
        resource=resource, metric_readers=[*readers, *extra_readers], shutdown_on_exit=False
    )
    _providers.append(provider)
    if active_version is not None:
        fast.register_active_requests(provider, active_version)
    return Pipeline(fast, provider, exporters, wrappers, readers)


def serve(fast: FastHttpMetrics, key: SeriesKey, *durations: float) -> None:
    """One finished request per duration."""
    method, scheme = key[0], key[1]
    for seconds in durations:
        fast.request_started(method, scheme)
        fast.request_ended(seconds, key)


def all_metrics(data: MetricsData) -> list[tuple[Resource, InstrumentationScope, Metric]]:
    return [
        (rm.resource, sm.scope, metric)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
    ]


def find(data: MetricsData, name: str) -> Metric | None:
    found = [metric for _, _, metric in all_metrics(data) if metric.name == name]
    assert len(found) <= 1, f"{name} exported {len(found)} times in one export"
    return found[0] if found else None


def duration_points(data: MetricsData) -> dict[frozenset[tuple[str, Any]], HistogramDataPoint]:
    metric = find(data, DURATION_NAME)
    assert metric is not None, "no request-duration histogram in the export"
    assert isinstance(metric.data, HistogramData)
    points: dict[frozenset[tuple[str, Any]], HistogramDataPoint] = {}
    for point in metric.data.data_points:
        assert isinstance(point, HistogramDataPoint)
        attrs = frozenset(dict(point.attributes or {}).items())
        assert attrs not in points, f"two points with attributes {dict(attrs)}"
        points[attrs] = point
    return points


def point_for(data: MetricsData, attributes: dict[str, Any]) -> HistogramDataPoint:
    points = duration_points(data)
    key = frozenset(attributes.items())
    assert key in points, f"no point for {attributes}; points: {[dict(k) for k in points]}"
    return points[key]


def active_values(data: MetricsData) -> dict[frozenset[tuple[str, Any]], float]:
    metric = find(data, ACTIVE_NAME)
    if metric is None:
        return {}
    assert isinstance(metric.data, Sum)
    assert metric.data.is_monotonic is False
    values: dict[frozenset[tuple[str, Any]], float] = {}
    for point in metric.data.data_points:
        assert isinstance(point, NumberDataPoint)
        values[frozenset(dict(point.attributes or {}).items())] = point.value
    return values


def buckets_with(*indexes: int) -> list[int]:
    counts = [0] * (len(DURATION_BUCKETS) + 1)
    for index in indexes:
        counts[index] += 1
    return counts


def scope_names(resource_metrics: ResourceMetrics) -> list[tuple[InstrumentationScope, list[str]]]:
    return [(sm.scope, [m.name for m in sm.metrics]) for sm in resource_metrics.scope_metrics]


# -- 1. buckets ------------------------------------------------------------------------------------


def test_durations_land_in_the_bucket_whose_upper_bound_includes_them() -> None:
    p = pipeline()
    serve(p.fast, KEY_A, 0.005, 0.0051, 0.3, 20.0, 10.0, 0.0)

    data = p.export()
    metric = find(data, DURATION_NAME)
    assert metric is not None
    assert metric.unit == "s"
    assert isinstance(metric.data, HistogramData)
    assert metric.data.aggregation_temporality is AggregationTemporality.CUMULATIVE
    point = point_for(data, ATTRS_A)
    assert list(point.explicit_bounds) == list(DURATION_BUCKETS)
    assert len(point.bucket_counts) == len(DURATION_BUCKETS) + 1
    # 0.005 and 0.0 -> (-inf, 0.005]; 0.0051 -> (0.005, 0.01]; 0.3 -> (0.25, 0.5];
    # 10.0 -> (7.5, 10.0] (the last bound, inclusive); 20.0 -> (10.0, +inf).
    assert list(point.bucket_counts) == buckets_with(0, 0, 1, 7, 13, 14)
    assert point.count == 6
    assert point.sum == pytest.approx(0.005 + 0.0051 + 0.3 + 20.0 + 10.0)
    assert point.min == 0.0
    assert point.max == 20.0


def test_min_and_max_are_per_series() -> None:
    p = pipeline()
    serve(p.fast, KEY_A, 0.2, 0.1)
    serve(p.fast, KEY_B, 3.0, 7.0)

    data = p.export()
    a, b = point_for(data, ATTRS_A), point_for(data, ATTRS_B)
    assert (a.count, a.sum, a.min, a.max) == (2, pytest.approx(0.3), 0.1, 0.2)
    assert (b.count, b.sum, b.min, b.max) == (2, pytest.approx(10.0), 3.0, 7.0)
    assert list(a.bucket_counts) == buckets_with(5, 6)
    assert list(b.bucket_counts) == buckets_with(11, 12)


# -- 2. attributes ---------------------------------------------------------------------------------


def test_each_series_key_is_one_point_with_its_attributes() -> None:
    p = pipeline()
    serve(p.fast, KEY_A, 0.01)
    serve(p.fast, KEY_B, 0.02)

    points = duration_points(p.export())
    assert set(points) == {frozenset(ATTRS_A.items()), frozenset(ATTRS_B.items())}
    for attributes, point in points.items():
        assert dict(point.attributes or {}) == dict(attributes)
        assert point.count == 1


def test_absent_route_status_and_error_are_omitted() -> None:
    assert series_attributes(KEY_A) == ATTRS_A
    assert series_attributes(KEY_B) == ATTRS_B
    bare: SeriesKey = ("GET", "https", None, 0, None)
    assert series_attributes(bare) == {"http.request.method": "GET", "url.scheme": "https"}

    p = pipeline()
    serve(p.fast, bare, 0.01)
    points = duration_points(p.export())
    assert list(points) == [frozenset({"http.request.method": "GET", "url.scheme": "https"}.items())]


# -- 3. cumulative ---------------------------------------------------------------------------------


def test_cumulative_exports_keep_counting_from_a_fixed_start() -> None:
    p = pipeline(CUMULATIVE)
    serve(p.fast, KEY_A, 0.01, 0.3)
    first = point_for(p.export(), ATTRS_A)
    time.sleep(0.002)
    serve(p.fast, KEY_A, 2.0)
    serve(p.fast, KEY_B, 0.02)
    second_data = p.export()
    second = point_for(second_data, ATTRS_A)

    assert first.count == 2
    assert second.count == 3
    assert second.sum == pytest.approx(2.31)
    assert (second.min, second.max) == (0.01, 2.0)
    assert list(second.bucket_counts) == buckets_with(1, 7, 10)
    assert second.start_time_unix_nano == first.start_time_unix_nano
    assert first.start_time_unix_nano <= first.time_unix_nano
    assert second.time_unix_nano > first.time_unix_nano
    assert point_for(second_data, ATTRS_B).start_time_unix_nano == first.start_time_unix_nano
    # A third export with no new requests still carries the totals.
    third = point_for(p.export(), ATTRS_A)
    assert third.count == 3
    assert third.start_time_unix_nano == first.start_time_unix_nano


# -- 4. delta --------------------------------------------------------------------------------------


def test_delta_exports_carry_only_their_interval() -> None:
    p = pipeline(DELTA)
    before = time.time_ns()
    serve(p.fast, KEY_A, 0.01, 0.02)
    serve(p.fast, KEY_B, 1.0)
    first_data = p.export()
    metric = find(first_data, DURATION_NAME)
    assert metric is not None and isinstance(metric.data, HistogramData)
    assert metric.data.aggregation_temporality is AggregationTemporality.DELTA
    first_a, first_b = point_for(first_data, ATTRS_A), point_for(first_data, ATTRS_B)
    assert (first_a.count, first_b.count) == (2, 1)
    assert first_a.start_time_unix_nano <= before

    time.sleep(0.002)
    serve(p.fast, KEY_A, 0.5)
    second_data = p.export()
    points = duration_points(second_data)
    assert list(points) == [frozenset(ATTRS_A.items())], "KEY_B had no request in the second interval"
    second_a = points[frozenset(ATTRS_A.items())]
    assert second_a.count == 1
    assert second_a.sum == pytest.approx(0.5)
    assert (second_a.min, second_a.max) == (0.5, 0.5)
    assert list(second_a.bucket_counts) == buckets_with(7)
    assert second_a.start_time_unix_nano >= first_a.time_unix_nano
    assert second_a.start_time_unix_nano == first_a.time_unix_nano
    assert second_a.time_unix_nano > second_a.start_time_unix_nano

    # Nothing in the third interval: no histogram, the SDK's metrics still go out.
    third_data = p.export()
    assert find(third_data, DURATION_NAME) is None
    assert find(third_data, ACTIVE_NAME) is not None
    # The interval after an empty one starts where the empty one ended, not earlier.
    serve(p.fast, KEY_B, 0.03)
    fourth = point_for(p.export(), ATTRS_B)
    assert fourth.count == 1
    assert fourth.start_time_unix_nano > second_a.time_unix_nano


# -- 5. two exporters ------------------------------------------------------------------------------


def test_two_exporters_on_one_aggregation_get_independent_figures() -> None:
    p = pipeline(DELTA, CUMULATIVE)
    delta, cumulative = 0, 1
    serve(p.fast, KEY_A, 0.01)
    d1 = point_for(p.export(delta), ATTRS_A)
    assert d1.count == 1

    serve(p.fast, KEY_A, 0.02)
    serve(p.fast, KEY_B, 0.03)
    c1_data = p.export(cumulative)
    c1 = point_for(c1_data, ATTRS_A)
    assert c1.count == 2, "the delta exporter's export must not reset the cumulative one"
    assert c1.sum == pytest.approx(0.03)
    assert point_for(c1_data, ATTRS_B).count == 1
    metric = find(c1_data, DURATION_NAME)
    assert metric is not None and isinstance(metric.data, HistogramData)
    assert metric.data.aggregation_temporality is AggregationTemporality.CUMULATIVE

    d2_data = p.export(delta)
    d2 = point_for(d2_data, ATTRS_A)
    assert d2.count == 1, "the cumulative exporter's export must not touch the delta interval"
    assert d2.sum == pytest.approx(0.02)
    assert point_for(d2_data, ATTRS_B).count == 1
    assert d2.start_time_unix_nano == d1.time_unix_nano

    serve(p.fast, KEY_B, 0.04)
    c2_data = p.export(cumulative)
    assert point_for(c2_data, ATTRS_A).count == 2
    assert point_for(c2_data, ATTRS_B).count == 2
    assert point_for(c2_data, ATTRS_A).start_time_unix_nano == c1.start_time_unix_nano
    d3 = duration_points(p.export(delta))
    assert list(d3) == [frozenset(ATTRS_B.items())]
    assert d3[frozenset(ATTRS_B.items())].count == 1


# -- 6. where the histogram goes -------------------------------------------------------------------


def test_histogram_joins_the_sdk_scope_of_the_same_resource() -> None:
    plain = CapturingExporter()
    plain_reader = PeriodicExportingMetricReader(plain, export_interval_millis=math.inf)
    p = pipeline(extra_readers=(plain_reader,))
    p.provider.get_meter("some.other.library", "1.0").create_counter("other.count").add(3)
    serve(p.fast, KEY_A, 0.01)

    data = p.export()
    plain_reader.collect()
    sdk_alone = plain.exports[-1]

    assert len(sdk_alone.resource_metrics) == 1
    assert len(data.resource_metrics) == 1, "the histogram must join the SDK's ResourceMetrics"
    resource_metrics = data.resource_metrics[0]
    assert resource_metrics.resource == RESOURCE
    assert resource_metrics.schema_url == sdk_alone.resource_metrics[0].schema_url
    expected = [
        (scope, [*names, DURATION_NAME] if scope == p.fast.scope else names)
        for scope, names in scope_names(sdk_alone.resource_metrics[0])
    ]
    assert scope_names(resource_metrics) == expected
    assert [scope for scope, names in expected if DURATION_NAME in names] == [p.fast.scope]


def test_histogram_gets_a_scope_of_its_own_when_the_sdk_has_none_for_it() -> None:
    # The active-request counter under another version: a different scope.
    p = pipeline(active_version="0.0.1")
    serve(p.fast, KEY_A, 0.01)

    data = p.export()
    assert len(data.resource_metrics) == 1
    scopes = scope_names(data.resource_metrics[0])
    assert scopes == [
        (InstrumentationScope(SCOPE_NAME, "0.0.1"), [ACTIVE_NAME]),
        (p.fast.scope, [DURATION_NAME]),
    ]


def test_histogram_gets_a_resource_of_its_own_when_the_sdk_reports_another() -> None:
    p = pipeline(resource=OTHER_RESOURCE)
    serve(p.fast, KEY_A, 0.01)

    data = p.export()
    assert [rm.resource for rm in data.resource_metrics] == [OTHER_RESOURCE, RESOURCE]
    assert scope_names(data.resource_metrics[0]) == [(p.fast.scope, [ACTIVE_NAME])]
    assert scope_names(data.resource_metrics[1]) == [(p.fast.scope, [DURATION_NAME])]
    assert point_for(data, ATTRS_A).count == 1


def test_other_resources_and_the_input_are_left_untouched() -> None:
    fast = make_fast()
    exporter = CapturingExporter()
    wrapper = WithHttpMetrics(exporter, fast)
    gauge = Metric(name="x", description="", unit="", data=Sum([], AggregationTemporality.CUMULATIVE, False))
    other_scope = InstrumentationScope("lib", "1")
    foreign = ResourceMetrics(OTHER_RESOURCE, [ScopeMetrics(fast.scope, [gauge], "")], "s1")
    own_scope_metrics = [ScopeMetrics(other_scope, [gauge], ""), ScopeMetrics(fast.scope, [gauge], "s2")]
    own = ResourceMetrics(RESOURCE, own_scope_metrics, "s3")
    incoming = MetricsData([foreign, own])
    serve(fast, KEY_A, 0.01)

    assert wrapper.export(incoming) is MetricExportResult.SUCCESS
    out = exporter.exports[-1]
    assert out.resource_metrics[0] is foreign
    assert [m.name for m in foreign.scope_metrics[0].metrics] == ["x"], "the other resource's scope got it"
    merged = out.resource_metrics[1]
    assert (merged.resource, merged.schema_url) == (RESOURCE, "s3")
    assert len(out.resource_metrics) == 2
    assert merged.scope_metrics[0] is own_scope_metrics[0]
    assert merged.scope_metrics[1].scope == fast.scope
    assert merged.scope_metrics[1].schema_url == "s2"
    assert [m.name for m in merged.scope_metrics[1].metrics] == ["x", DURATION_NAME]
    assert len(merged.scope_metrics) == 2
    # The SDK's objects were not changed in place.
    assert incoming.resource_metrics == [foreign, own]
    assert own.scope_metrics is own_scope_metrics
    assert [m.name for m in own_scope_metrics[1].metrics] == ["x"]


# -- 7. active requests ----------------------------------------------------------------------------


def test_active_requests_counts_requests_in_flight() -> None:
    p = pipeline()
    get_http = frozenset({"http.request.method": "GET", "url.scheme": "http"}.items())
    post_https = frozenset({"http.request.method": "POST", "url.scheme": "https"}.items())
    p.fast.request_started("GET", "http")
    p.fast.request_started("GET", "http")
    p.fast.request_ended(0.01, KEY_A)
    p.fast.request_started("POST", "https")

    data = p.export()
    assert active_values(data) == {get_http: 1, post_https: 1}
    active = find(data, ACTIVE_NAME)
    assert active is not None and active.unit == "{request}"
    assert [scope for _, scope, metric in all_metrics(data) if metric.name == ACTIVE_NAME] == [p.fast.scope]

    p.fast.request_ended(0.02, KEY_A)
    assert active_values(p.export())[get_http] == 0


def test_active_requests_is_not_exported_before_any_request() -> None:
    p = pipeline()
    p.provider.get_meter("probe").create_counter("probe").add(1)
    data = p.export()
    assert active_values(data) == {}
    assert find(data, DURATION_NAME) is None


# -- 8. fork ---------------------------------------------------------------------------------------


def _in_child(p: Pipeline, started_at: int) -> dict[str, Any]:
    """What a forked worker exports: the parent's series and active counts must be gone."""
    observed = [(dict(o.attributes or {}), o.value) for o in p.fast.observe_active(CallbackOptions())]
    first = p.export()
    p.fast.request_started("POST", "http")
    p.fast.request_ended(0.02, KEY_B)
    p.fast.request_started("GET", "http")
    second = p.export()
    points = duration_points(second)
    return {
        "observed_after_fork": observed,
        "first_has_histogram": find(first, DURATION_NAME) is not None,
        "second_points": {
            json.dumps(sorted(dict(attrs).items())): [point.count, point.sum, point.start_time_unix_nano]
            for attrs, point in points.items()
        },
        "second_active": [[sorted(dict(k).items()), v] for k, v in active_values(second).items()],
        "started_at": started_at,
    }


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_from_zero() -> None:
    p = pipeline(CUMULATIVE)
    p.provider.get_meter("probe").create_counter("probe").add(1)  # every collection exports
    serve(p.fast, KEY_A, 0.01, 0.02)
    p.fast.request_started("GET", "http")  # in flight at the fork
    before_fork = time.time_ns()

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 0
        try:
            os.close(read_end)
            try:
                payload = json.dumps(_in_child(p, before_fork))
            except BaseException as error:
                payload = json.dumps({"error": repr(error)})
            with os.fdopen(write_end, "w") as pipe:
                pipe.write(payload)
        except BaseException:
            code = 1
        finally:
            os._exit(code)

    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        raw = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    child = json.loads(raw)
    assert "error" not in child, child.get("error")
    assert child["observed_after_fork"] == []
    assert child["first_has_histogram"] is False, "the parent's series were exported by the child"
    assert list(child["second_points"]) == [json.dumps(sorted(ATTRS_B.items()))]
    count, total, start = child["second_points"][json.dumps(sorted(ATTRS_B.items()))]
    assert (count, total) == (1, pytest.approx(0.02))
    assert start >= before_fork, "the child's cumulative start time must be reset at the fork"
    get_http = [["http.request.method", "GET"], ["url.scheme", "http"]]
    assert [get_http, 1] in child["second_active"], child["second_active"]

    # The parent is unaffected.
    parent = p.export()
    assert point_for(parent, ATTRS_A).count == 2
    assert frozenset(ATTRS_B.items()) not in duration_points(parent)
    assert active_values(parent)[frozenset({"http.request.method": "GET", "url.scheme": "http"}.items())] == 1


# -- 9. nothing to add -----------------------------------------------------------------------------


def test_without_requests_the_export_passes_through_unchanged() -> None:
    fast = make_fast()
    exporter = CapturingExporter()
    wrapper = WithHttpMetrics(exporter, fast)
    counter = Metric(name="c", description="", unit="", data=Sum([], AggregationTemporality.CUMULATIVE, True))
    incoming = MetricsData([ResourceMetrics(RESOURCE, [ScopeMetrics(fast.scope, [counter], "")], "")])

    assert wrapper.export(incoming, timeout_millis=1234) is MetricExportResult.SUCCESS
    assert exporter.exports == [incoming]
    assert exporter.exports[0] is incoming

    # Through an SDK pipeline: the SDK's metrics only.
    p = pipeline(DELTA, CUMULATIVE, active_version=None)
    p.provider.get_meter("probe").create_counter("probe").add(1)
    for index in (0, 1):
        data = p.export(index)
        assert [metric.name for _, _, metric in all_metrics(data)] == ["probe"]


def test_a_delta_export_after_an_empty_interval_passes_through() -> None:
    fast = make_fast()
    exporter = CapturingExporter(DELTA)
    wrapper = WithHttpMetrics(exporter, fast)
    serve(fast, KEY_A, 0.01)
    wrapper.export(MetricsData([]))
    assert point_for(exporter.exports[-1], ATTRS_A).count == 1
    empty = MetricsData([])
    wrapper.export(empty)
    assert exporter.exports[-1] is empty


# -- 10. which implementation the middleware gets --------------------------------------------------

SERVER_METRICS_SCRIPT = textwrap.dedent(
    """
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    from beacon_otel.instrumentation import http_metrics as sm

    fast = sm.FastHttpMetrics(Resource({}), InstrumentationScope(sm.SCOPE_NAME, "1"))
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    other = MeterProvider()

    print("no_global_no_install", type(sm.server_metrics("1")).__name__)
    sm.install(fast, provider)
    print("installed_not_global", type(sm.server_metrics("1")).__name__)
    metrics.set_meter_provider(provider)
    print("installed_global", sm.server_metrics("1") is fast)
    sm.install(fast, other)
    chosen = sm.server_metrics("1")
    print("installed_for_another", type(chosen).__name__)
    chosen.request_started("GET", "http")
    chosen.request_ended(0.3, ("GET", "http", "/x", 200, None))
    data = reader.get_metrics_data()
    points = [
        (m.name, list(p.explicit_bounds), list(p.bucket_counts), dict(p.attributes))
        for rm in data.resource_metrics
        for s in rm.scope_metrics
        for m in s.metrics
        for p in m.data.data_points
    ]
    print("sdk_points", points)
    """
)


def test_server_metrics_is_the_fast_one_only_when_installed_for_the_global_provider() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", SERVER_METRICS_SCRIPT],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert lines["no_global_no_install"] == "SdkServerMetrics"
    assert lines["installed_not_global"] == "SdkServerMetrics"
    assert lines["installed_global"] == "True"
    assert lines["installed_for_another"] == "SdkServerMetrics"
    expected_point = (
        DURATION_NAME,
        list(DURATION_BUCKETS),
        buckets_with(7),
        {
            "http.request.method": "GET",
            "url.scheme": "http",
            "http.route": "/x",
            "http.response.status_code": 200,
        },
    )
    assert lines["sdk_points"] == repr([expected_point])


# -- 11. a bound on the number of series ----------------------------------------------------------

OVERFLOW = {"otel.metric.overflow": True}


def route_key(route: str) -> SeriesKey:
    return ("GET", "http", route, 200, None)


def test_series_beyond_the_limit_count_in_one_overflow_point() -> None:
    fast = FastHttpMetrics(RESOURCE, InstrumentationScope(SCOPE_NAME, VERSION), series_limit=3)
    p = pipeline(fast=fast)
    for route, seconds in [("/1", 0.01), ("/2", 0.02), ("/3", 0.3), ("/4", 4.0), ("/1", 0.01), ("/3", 0.3)]:
        serve(fast, route_key(route), seconds)

    points = duration_points(p.export())
    assert set(points) == {
        frozenset(series_attributes(route_key("/1")).items()),
        frozenset(series_attributes(route_key("/2")).items()),
        frozenset(OVERFLOW.items()),
    }, "the limit counts the overflow point: two series and the overflow"
    overflow = points[frozenset(OVERFLOW.items())]
    assert (overflow.count, overflow.sum, overflow.min, overflow.max) == (3, pytest.approx(4.6), 0.3, 4.0)
    assert list(overflow.bucket_counts) == buckets_with(7, 7, 11)
    assert points[frozenset(series_attributes(route_key("/1")).items())].count == 2, (
        "a known series keeps counting"
    )
    assert sum(point.count for point in points.values()) == 6, "no duration is lost"


def test_the_default_limit_is_2000_points_per_histogram() -> None:
    p = pipeline()
    for index in range(2100):
        serve(p.fast, route_key(f"/r{index}"), 0.01)
    serve(p.fast, KEY_A, 0.01)

    points = duration_points(p.export())
    assert len(points) == 2000
    assert points[frozenset(OVERFLOW.items())].count == 102
    assert frozenset(series_attributes(route_key("/r1998")).items()) in points
    assert frozenset(series_attributes(route_key("/r1999")).items()) not in points


def test_each_exporter_bounds_its_own_series_and_a_delta_one_starts_afresh() -> None:
    fast = FastHttpMetrics(RESOURCE, InstrumentationScope(SCOPE_NAME, VERSION), series_limit=3)
    p = pipeline(DELTA, CUMULATIVE, fast=fast)
    delta, cumulative = 0, 1
    for route in ("/1", "/2", "/3"):
        serve(fast, route_key(route), 0.01)
    assert frozenset(OVERFLOW.items()) in duration_points(p.export(delta))

    serve(fast, route_key("/3"), 0.01)
    serve(fast, route_key("/4"), 0.01)
    fresh = duration_points(p.export(delta))
    assert set(fresh) == {frozenset(series_attributes(route_key(r)).items()) for r in ("/3", "/4")}
    kept = duration_points(p.export(cumulative))
    assert kept[frozenset(OVERFLOW.items())].count == 3, "/3 twice and /4 stay in the cumulative overflow"
    assert len(kept) == 3


def test_the_client_histogram_has_a_bound_of_its_own() -> None:
    fast = FastHttpMetrics(RESOURCE, InstrumentationScope(SCOPE_NAME, VERSION), series_limit=2)
    p = pipeline(fast=fast)
    serve(fast, KEY_A, 0.01)
    for host in ("a.example", "b.example"):
        fast.client_request_started("GET", host, 443)
        fast.client_request_ended(0.01, ("GET", host, 443, 200, None))

    data = p.export()
    assert list(duration_points(data)) == [frozenset(ATTRS_A.items())], "the server series are not touched"
    client = find(data, "http.client.request.duration")
    assert client is not None and isinstance(client.data, HistogramData)
    assert [dict(point.attributes or {}) for point in client.data.data_points] == [
        {
            "http.request.method": "GET",
            "server.address": "a.example",
            "server.port": 443,
            "http.response.status_code": 200,
        },
        OVERFLOW,
    ]
