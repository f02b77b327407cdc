"""Fixtures that start real things: an OTLP receiver, fake GPU providers, a Postgres server."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from beacon_otel.stack.postgres import PostgresServer, start_postgres
from beacon_otel.testing.otlp_receiver import OtlpReceiver
from tests.support.processes import EXAMPLES
from tests.support.sink import database, sink  # noqa: F401  (fixtures: a migrated database, a sink on it)

if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))

from demo_router.fake_providers import ThreadedServer, start_in_thread


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    """A real OTLP receiver (gRPC and HTTP) on loopback ports of its own."""
    with OtlpReceiver() as otlp:
        yield otlp


class FakeProviders:
    """The demo's fake GPU providers, served in this process on a free port."""

    def __init__(self, server: ThreadedServer, port: int) -> None:
        self.server = server
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"

    def endpoint(self, name: str) -> str:
        return f"{self.base_url}/p/{name}"

    def spec(self, name: str, kind: str, region: str) -> str:
        """One entry of DEMO_PROVIDERS."""
        return f"{name}|{kind}|{region}|{self.endpoint(name)}"

    def set_mode(self, name: str, mode: str, delay: float | None = None) -> None:
        import httpx

        body: dict[str, object] = {"mode": mode}
        if delay is not None:
            body["delay"] = delay
        httpx.put(f"{self.base_url}/control/{name}", json=body, timeout=5).raise_for_status()

    def state(self) -> dict[str, dict[str, object]]:
        import httpx

        providers: dict[str, dict[str, object]] = httpx.get(f"{self.base_url}/control", timeout=5).json()[
            "providers"
        ]
        return providers

    def reset(self) -> None:
        import httpx

        httpx.delete(f"{self.base_url}/control", timeout=5).raise_for_status()


@pytest.fixture(scope="session")
def fake_providers_server() -> Iterator[FakeProviders]:
    server, port = start_in_thread()
    yield FakeProviders(server, port)
    server.stop()


@pytest.fixture
def fake_providers(fake_providers_server: FakeProviders) -> FakeProviders:
    fake_providers_server.reset()
    return fake_providers_server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throwaway Postgres for the session (127.0.0.1, run as the postgres user)."""
    server = start_postgres()
    yield server
    server.destroy()
