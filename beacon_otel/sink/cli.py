"""``beacon-otel sink`` (serve) and ``beacon-otel sink migrate``."""

from __future__ import annotations

import asyncio
import os
import socket
import sys

from beacon_otel.settings import ConfigError, SinkSettings, load_sink_settings


def _settings(serving: bool = True) -> SinkSettings | None:
    try:
        return load_sink_settings(serving=serving)
    except ConfigError as error:
        for problem in error.problems:
            print(f"beacon-otel sink: {problem}", file=sys.stderr)
        return None


def serve() -> int:
    settings = _settings()
    if settings is None:
        return 2
    import uvicorn

    from beacon_otel.sink.connections import ConnectionLimits, guarded_protocol
    from beacon_otel.sink.server import SinkApp

    # Bound here, before anything is announced: a taken port is one clear line, not a traceback.
    try:
        listener = socket.create_server(
            (settings.host, settings.port), family=socket.AF_INET6 if ":" in settings.host else socket.AF_INET
        )
    except OSError as error:
        print(
            f"beacon-otel sink: cannot listen on {settings.host}:{settings.port} (BEACON_OTEL_SINK_ADDRESS): "
            f"{os.strerror(error.errno) if error.errno else error}",
            file=sys.stderr,
        )
        return 3
    print(f"beacon-otel sink: listening on http://{settings.host}:{settings.port}/v1/traces", file=sys.stderr)
    protocol = guarded_protocol(
        ConnectionLimits(settings.max_connections, settings.max_header_bytes, settings.header_timeout)
    )
    config = uvicorn.Config(
        SinkApp(settings),
        http=protocol,
        ws="none",
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_keep_alive=settings.idle_timeout,  # type: ignore[arg-type]  # seconds, a float works
        timeout_graceful_shutdown=settings.shutdown_timeout,  # type: ignore[arg-type]
    )
    uvicorn.Server(config).run(sockets=[listener])
    return 0


def migrate() -> int:
    settings = _settings(serving=False)
    if settings is None:
        return 2
    from beacon_otel.sink.database import MigrationError, migrate

    try:
        for line in asyncio.run(migrate(settings.database_url)):
            print(f"beacon-otel sink migrate: {line}")
    except MigrationError as error:
        print(f"beacon-otel sink migrate: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"beacon-otel sink migrate: cannot reach Postgres ({error})", file=sys.stderr)
        return 1
    return 0
