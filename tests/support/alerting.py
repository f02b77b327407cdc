"""For the alerting tests: a local webhook receiver (what Slack or any webhook would get), the
Prometheus and Alertmanager APIs of a running stack, and the rules with test-sized ``for:``."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from beacon_otel.stack import addresses
from beacon_otel.stack.up import Stack
from tests.support.processes import ROOT

RULES = ROOT / "collector" / "prometheus" / "rules" / "beacon.rules.yml"


class WebhookReceiver:
    """Records the JSON body of every POST, by path (``/slack``, ``/webhook``); answers 200 ok."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.received.append((self.path, json.loads(body or b"{}")))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def bodies(self, path: str) -> list[dict[str, Any]]:
        with self._lock:
            return [body for where, body in self.received if where == path]

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def shortened_rules(folder: Path, hold: str = "2s") -> Path:
    """The shipped rules with every ``for:`` cut to ``hold``: the same expressions, faster."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "beacon.rules.yml"
    text, count = re.subn(r"(?m)^(\s+for:\s*)\S+\s*$", rf"\g<1>{hold}", RULES.read_text())
    assert count >= 5, "the rules lost their for: clauses?"
    path.write_text(text)
    return path


def prometheus_query(stack: Stack, expr: str) -> list[dict[str, Any]]:
    """The instant-query result of ``expr`` (vector or matrix); fails on a PromQL error."""
    url = f"{stack.url(addresses.PROMETHEUS)}/api/v1/query"
    response = httpx.get(url, params={"query": expr}, timeout=10)
    body = response.json()
    assert body.get("status") == "success", f"{expr}: {body}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def prometheus_alerts(stack: Stack) -> list[dict[str, Any]]:
    response = httpx.get(f"{stack.url(addresses.PROMETHEUS)}/api/v1/alerts", timeout=10)
    alerts: list[dict[str, Any]] = response.json()["data"]["alerts"]
    return alerts


def alertmanager_alerts(stack: Stack) -> list[dict[str, Any]]:
    response = httpx.get(f"{stack.url(addresses.ALERTMANAGER)}/api/v2/alerts", timeout=10)
    response.raise_for_status()
    alerts: list[dict[str, Any]] = response.json()
    return alerts
