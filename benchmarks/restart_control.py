"""The control for fault (d): an *uninstrumented* router's p99 while a Postgres restarts beside it.

The fault suite (``tests/test_faults.py``) restarts Postgres under the sink while the router,
under ``beacon-otel-run``, serves load, and reports the router's p99 before and during the
restart. Everything shares two cores, so a restart slows the router whatever it runs. This
measures the same phases with no telemetry at all: the router does not use this Postgres; only
the machine is shared.

    python -m benchmarks.restart_control [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
import time

from beacon_otel.stack.postgres import start_postgres
from benchmarks.common import BIN, base_env, free_port, running, wait_http
from tests.support.load import Load, percentile

HEALTHY_SECONDS = 2.0  # as in the fault suite
DOWN_SECONDS = 3.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    server = start_postgres()
    app_port, fakes_port = free_port(), free_port()
    providers = ",".join(
        f"{name}|{kind}|{region}|http://127.0.0.1:{fakes_port}/p/{name}"
        for name, kind, region in (("golem-us", "golem", "us-east"), ("modal-eu", "modal", "eu-west"))
    )
    app = [str(BIN / "uvicorn"), "demo_router.app:app", "--host", "127.0.0.1", "--port", str(app_port)]
    fakes = [sys.executable, "-m", "demo_router.fake_providers", "--port", str(fakes_port)]
    try:
        with running(fakes, base_env()):
            wait_http(f"http://127.0.0.1:{fakes_port}/control")
            with running(app, base_env(DEMO_PROVIDERS=providers)) as process:
                wait_http(f"http://127.0.0.1:{app_port}/health", process=process)
                for round_number in range(1, args.rounds + 1):
                    with Load(f"http://127.0.0.1:{app_port}", ["/health", "/fanout"], process.pid) as load:
                        time.sleep(1.0)  # warm-up, as in the fault suite
                        healthy_start = time.monotonic()
                        time.sleep(HEALTHY_SECONDS)
                        fault_start = time.monotonic()
                        server.stop()
                        time.sleep(DOWN_SECONDS)
                        server.start()
                        fault_end = time.monotonic()
                    healthy = [sent.latency for sent in load.between(healthy_start, fault_start)]
                    fault = [sent.latency for sent in load.between(fault_start, fault_end)]
                    print(
                        f"round {round_number}: uninstrumented router, healthy p99 "
                        f"{percentile(healthy, 0.99) * 1000:.1f} ms ({len(healthy)} requests), "
                        f"during the Postgres restart {percentile(fault, 0.99) * 1000:.1f} ms "
                        f"({len(fault)} requests), failed requests {len(load.failures())}",
                        flush=True,
                    )
    finally:
        server.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
