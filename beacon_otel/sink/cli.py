"""``beacon-otel sink`` (serve) and ``beacon-otel sink migrate``."""

from __future__ import annotations

import asyncio
import sys

from beacon_otel.settings import ConfigError, SinkSettings, load_sink_settings


def _settings() -> SinkSettings | None:
    try:
        return load_sink_settings()
    except ConfigError as error:
        for problem in error.problems:
            print(f"beacon-otel sink: {problem}", file=sys.stderr)
        return None


def serve() -> int:
    settings = _settings()
    if settings is None:
        return 2
    import uvicorn

    from beacon_otel.sink.server import SinkApp

    print(f"beacon-otel sink: listening on http://{settings.host}:{settings.port}/v1/traces", file=sys.stderr)
    uvicorn.run(
        SinkApp(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    return 0


def migrate() -> int:
    settings = _settings()
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
