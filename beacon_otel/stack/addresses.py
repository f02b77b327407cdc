"""The local stack's listening addresses: the well-known ports on 127.0.0.1, each overridable.

Every address is a variable the component's own config reads (``collector/otelcol.yaml``,
``collector/jaeger/jaeger-local.yaml``, the sink's settings), so the stack only passes them on.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import NamedTuple

from beacon_otel.stack.paths import StackError


class Address(NamedTuple):
    variable: str
    default: str
    what: str


COLLECTOR_OTLP_GRPC = Address("BEACON_COLLECTOR_OTLP_GRPC_ENDPOINT", "127.0.0.1:4317", "Collector OTLP gRPC")
COLLECTOR_OTLP_HTTP = Address("BEACON_COLLECTOR_OTLP_HTTP_ENDPOINT", "127.0.0.1:4318", "Collector OTLP HTTP")
COLLECTOR_HEALTH = Address("BEACON_COLLECTOR_HEALTH_ENDPOINT", "127.0.0.1:13133", "Collector health")
COLLECTOR_PROMETHEUS = Address(
    "BEACON_COLLECTOR_PROMETHEUS_ENDPOINT", "127.0.0.1:8889", "Collector Prometheus endpoint"
)
SINK = Address("BEACON_OTEL_SINK_ADDRESS", "127.0.0.1:4320", "sink")
JAEGER_QUERY = Address("BEACON_JAEGER_QUERY_ENDPOINT", "127.0.0.1:16686", "Jaeger query API")
JAEGER_QUERY_GRPC = Address("BEACON_JAEGER_QUERY_GRPC_ENDPOINT", "127.0.0.1:16685", "Jaeger query gRPC")
JAEGER_OTLP_GRPC = Address("BEACON_JAEGER_OTLP_GRPC_ENDPOINT", "127.0.0.1:14317", "Jaeger OTLP gRPC")
JAEGER_OTLP_HTTP = Address("BEACON_JAEGER_OTLP_HTTP_ENDPOINT", "127.0.0.1:14318", "Jaeger OTLP HTTP")
JAEGER_HEALTH = Address("BEACON_JAEGER_HEALTH_ENDPOINT", "127.0.0.1:13134", "Jaeger health")
PROMETHEUS = Address("BEACON_PROMETHEUS_ENDPOINT", "127.0.0.1:9090", "Prometheus")
ALERTMANAGER = Address("BEACON_ALERTMANAGER_ENDPOINT", "127.0.0.1:9093", "Alertmanager")

COLLECTOR = (COLLECTOR_OTLP_GRPC, COLLECTOR_OTLP_HTTP, COLLECTOR_HEALTH, COLLECTOR_PROMETHEUS)
JAEGER = (JAEGER_QUERY, JAEGER_QUERY_GRPC, JAEGER_OTLP_GRPC, JAEGER_OTLP_HTTP, JAEGER_HEALTH)
ALERTING = (PROMETHEUS, ALERTMANAGER)
ALL = (*COLLECTOR, SINK, *JAEGER, *ALERTING)


def resolve(addresses: tuple[Address, ...], env: Mapping[str, str]) -> dict[str, str]:
    """variable -> host:port, from the environment or the default."""
    return {address.variable: env.get(address.variable) or address.default for address in addresses}


def split(hostport: str, variable: str) -> tuple[str, int]:
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise StackError(f"{variable}={hostport!r}: expected host:port, e.g. 127.0.0.1:4317")
    return host, int(port)


def check_free(addresses: tuple[Address, ...], resolved: Mapping[str, str]) -> None:
    """Every address can be bound now; one error naming each that cannot (and its variable)."""
    taken = []
    for address in addresses:
        hostport = resolved[address.variable]
        host, port = split(hostport, address.variable)
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host.strip("[]"), port))
            except OSError as error:
                taken.append(f"{address.what} {hostport} ({address.variable}): {error.strerror}")
    if taken:
        raise StackError(
            "cannot listen on " + "; ".join(taken) + ". Is another stack or Collector running? "
            "Stop it, or set the variable named to a free host:port."
        )


def from_environment(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    return resolve(ALL, env)
