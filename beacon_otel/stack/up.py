"""``beacon-otel stack up``: Jaeger, the Collector, the sink and Postgres, then Prometheus and
Alertmanager (``alerting``), on 127.0.0.1, no Docker.

The Collector runs ``collector/otelcol.yaml`` with one ``destinations/`` and one ``sampling/`` file,
exactly as the Compose file runs it; only the listening addresses differ (loopback instead of a
container network). The stack stays in the foreground; Ctrl-C or SIGTERM stops every child.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from beacon_otel.stack import addresses, alerting, alertmanager_config
from beacon_otel.stack.build import collector_binary, jaeger_binary
from beacon_otel.stack.build_alerting import alertmanager_binary, prometheus_binary
from beacon_otel.stack.paths import StackError, cache_dir, collector_dir
from beacon_otel.stack.postgres import PostgresServer
from beacon_otel.stack.processes import Child

# The development token of compose.yaml and otelcol.yaml: not a secret, loopback only.
DEVELOPMENT_SINK_TOKEN = "dev-sink-token-not-a-secret"
DEFAULT_DESTINATION = "jaeger-sink"
DEFAULT_SAMPLING = "off"
# The router's port when it runs on the same machine (uvicorn ... --port 8080).
DEFAULT_HEALTH_URL = "http://127.0.0.1:8080/health"
DEFAULT_READY_URL = "http://127.0.0.1:8080/ready"


@dataclass
class StackOptions:
    destination: str = DEFAULT_DESTINATION
    sampling: str = DEFAULT_SAMPLING
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    logs: Path | None = None  # the children's output; default: the cache folder's logs/
    alerting: bool = True  # Prometheus (scraping the Collector, with the rules) and Alertmanager

    @property
    def with_jaeger(self) -> bool:
        return "jaeger" in self.destination.split("-")

    @property
    def with_sink(self) -> bool:
        return "sink" in self.destination.split("-")


class Stack:
    """The running stack; ``start()`` brings every part up in dependency order, ``stop()`` all down."""

    def __init__(self, options: StackOptions, say: Callable[[str], None] | None = None) -> None:
        self.options = options
        self.say = say or _say
        env = options.env
        self.collector_dir = collector_dir(env)
        self.addresses = addresses.from_environment(env)
        self.logs = options.logs or cache_dir(env) / "logs"
        self.postgres: PostgresServer | None = None
        self.database_url = env.get("DATABASE_URL") or None
        self.sink_token = env.get("BEACON_OTEL_SINK_TOKEN") or DEVELOPMENT_SINK_TOKEN
        self.children: dict[str, Child] = {}
        self._check_files()

    # --- what runs --------------------------------------------------------------------------------

    def _check_files(self) -> None:
        for kind, name in (("destinations", self.options.destination), ("sampling", self.options.sampling)):
            path = self.collector_dir / kind / f"{name}.yaml"
            if not path.is_file():
                known = sorted(p.stem for p in (self.collector_dir / kind).glob("*.yaml"))
                raise StackError(
                    f"no {kind} file {name!r} in {path.parent}: choose one of {', '.join(known)}"
                )
        binaries = [collector_binary(self.options.env), jaeger_binary(self.options.env)]
        if self.options.alerting:
            binaries += [prometheus_binary(self.options.env), alertmanager_binary(self.options.env)]
        for binary in binaries:
            if not binary.exists():
                raise StackError(f"{binary} is missing: run `beacon-otel stack build` first")
        if self.options.alerting:  # a bad variable stops the start before anything runs
            alertmanager_config.check(self.options.env)
            alerting.scrape_interval(self.options.env)
            alerting.rule_files(self.options.env, self.collector_dir)

    def _needed_addresses(self) -> tuple[addresses.Address, ...]:
        needed = list(addresses.COLLECTOR)
        if self.options.with_sink:
            needed.append(addresses.SINK)
        if self.options.with_jaeger:
            needed += addresses.JAEGER
        if self.options.alerting:
            needed += addresses.ALERTING
        return tuple(needed)

    def url(self, address: addresses.Address, path: str = "") -> str:
        return f"http://{self.addresses[address.variable]}{path}"

    def _jaeger(self) -> Child:
        env = {**self.options.env, **addresses.resolve(addresses.JAEGER, self.addresses)}
        return Child(
            name="jaeger",
            command=[
                str(jaeger_binary(env)),
                f"--config={self.collector_dir / 'jaeger' / 'jaeger-local.yaml'}",
            ],
            env=env,
            log=self.logs / "jaeger.log",
            ready_url=self.url(addresses.JAEGER_HEALTH, "/status"),
        )

    def _sink(self) -> Child:
        assert self.database_url is not None
        env = {
            **self.options.env,
            "DATABASE_URL": self.database_url,
            "BEACON_OTEL_SINK_ADDRESS": self.addresses[addresses.SINK.variable],
            "BEACON_OTEL_SINK_TOKEN": self.sink_token,
        }
        return Child(
            name="sink",
            command=[sys.executable, "-m", "beacon_otel.cli", "sink", "serve"],
            env=env,
            log=self.logs / "sink.log",
            ready_address=addresses.split(self.addresses[addresses.SINK.variable], addresses.SINK.variable),
        )

    def collector_env(self) -> dict[str, str]:
        env = {**self.options.env, **addresses.resolve(addresses.COLLECTOR, self.addresses)}
        env.setdefault("BEACON_COLLECTOR_HEALTH_URL", DEFAULT_HEALTH_URL)
        env.setdefault("BEACON_COLLECTOR_READY_URL", DEFAULT_READY_URL)
        env["BEACON_OTEL_SINK_TOKEN"] = self.sink_token
        env["BEACON_COLLECTOR_JAEGER_ENDPOINT"] = self.addresses[addresses.JAEGER_OTLP_GRPC.variable]
        env["BEACON_COLLECTOR_SINK_ENDPOINT"] = self.url(addresses.SINK)
        return env

    def collector_command(self) -> list[str]:
        folder = self.collector_dir
        return [
            str(collector_binary(self.options.env)),
            f"--config={folder / 'otelcol.yaml'}",
            f"--config={folder / 'destinations' / f'{self.options.destination}.yaml'}",
            f"--config={folder / 'sampling' / f'{self.options.sampling}.yaml'}",
            # The Collector's own metrics would take :8888; the stack has no use for them.
            "--set=service::telemetry::metrics::level=none",
        ]

    def _collector(self) -> Child:
        return Child(
            name="collector",
            command=self.collector_command(),
            env=self.collector_env(),
            log=self.logs / "collector.log",
            ready_url=self.url(addresses.COLLECTOR_HEALTH, "/"),
        )

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start every part; on any failure stop what started and raise a StackError naming the part."""
        addresses.check_free(self._needed_addresses(), self.addresses)
        self.logs.mkdir(parents=True, exist_ok=True)
        try:
            if self.options.with_sink:
                self._start_database()
                self._start(
                    self._sink(), f"{self.url(addresses.SINK)}/v1/traces (OTLP/HTTP traces -> trace_spans)"
                )
            if self.options.with_jaeger:
                self._start(
                    self._jaeger(), f"{self.url(addresses.JAEGER_QUERY)} (query API: /api/traces/<id>)"
                )
            collector = self._collector()
            self._start(
                collector,
                f"OTLP {self.addresses[addresses.COLLECTOR_OTLP_GRPC.variable]} (gRPC) "
                f"{self.url(addresses.COLLECTOR_OTLP_HTTP)} (HTTP); "
                f"metrics {self.url(addresses.COLLECTOR_PROMETHEUS, '/metrics')}; "
                f"health {self.url(addresses.COLLECTOR_HEALTH, '/')}",
            )
            if self.options.alerting:
                self._start_alerting()
        except BaseException:
            self.stop()
            raise
        self.say(
            f"checks   {collector.env['BEACON_COLLECTOR_HEALTH_URL']} "
            f"{collector.env['BEACON_COLLECTOR_READY_URL']}"
        )
        self.say(f"logs     {self.logs}")

    def _start_alerting(self) -> None:
        """Alertmanager first, so that Prometheus's first alerts have somewhere to go."""
        env = self.options.env
        run = self.logs / "config"
        run.mkdir(parents=True, exist_ok=True, mode=0o700)
        manager = alerting.alertmanager_child(env, self.addresses, self.collector_dir, run, self.logs)
        kinds = alertmanager_config.receivers(env)
        self._start(
            manager,
            f"{self.url(addresses.ALERTMANAGER, '/api/v2/alerts')} (notifies: "
            + (", ".join(kinds) or "nobody; set BEACON_ALERT_SLACK_WEBHOOK_URL or BEACON_ALERT_WEBHOOK_URL")
            + ")",
        )
        prometheus = alerting.prometheus_child(env, self.addresses, self.collector_dir, run, self.logs)
        self._start(
            prometheus,
            f"{self.url(addresses.PROMETHEUS, '/api/v1/alerts')} (scrapes the Collector every "
            f"{alerting.scrape_interval(env)}; data {alerting.data_dir(env)})",
        )

    def _start(self, child: Child, description: str) -> None:
        child.log.write_bytes(b"")
        self.children[child.name] = child
        child.start()
        self.say(f"{child.name:<8} {description}")

    def _start_database(self) -> None:
        if self.database_url is None:
            self.postgres = PostgresServer().init().start()
            self.database_url = self.postgres.dsn
            self.say(
                f"postgres {self.database_url} (throwaway, deleted on exit; set DATABASE_URL to keep data)"
            )
        else:
            self.say("postgres DATABASE_URL (yours)")
        from beacon_otel.sink.database import MigrationError, migrate

        try:
            asyncio.run(migrate(self.database_url))
        except (MigrationError, OSError) as error:
            raise StackError(f"postgres: cannot prepare trace_spans ({error})") from None

    def restart(self, name: str) -> None:
        """Stop one part and start it again with the same settings (for tests and operators)."""
        child = self.children[name]
        child.stop()
        child.start()

    def stop(self) -> None:
        """Every child in reverse start order: the Collector first, so it flushes into live backends."""
        for child in reversed(list(self.children.values())):
            child.stop()
        if self.postgres is not None:
            self.postgres.destroy()
            self.postgres = None

    def wait(self, stopping: threading.Event) -> int:
        """Block until ``stopping`` is set (0) or a child dies on its own (1, after stopping the rest)."""
        while not stopping.wait(0.5):
            for child in self.children.values():
                code = child.exit_code()
                if code is not None:
                    self.say(
                        f"{child.name} exited with code {code}; stopping the stack. "
                        f"Last lines:\n{child.tail()}"
                    )
                    return 1
        return 0


def _say(line: str) -> None:
    print(line, flush=True)


def run(options: StackOptions) -> int:
    """The foreground command: start, print, wait for Ctrl-C / SIGTERM, stop everything."""
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    stack: Stack | None = None
    try:
        stack = Stack(options)
        stack.start()
        print("stack up: Ctrl-C stops everything", flush=True)
        return stack.wait(stopping)
    except StackError as error:
        print(f"beacon-otel stack up: {error}", file=sys.stderr)
        return 1
    finally:
        if stack is not None:
            stack.stop()
            print("stack stopped", flush=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
