"""A minimal client of Prometheus's HTTP API (standard library only: the command runs in CI
steps and cron jobs that install nothing but beacon-otel)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class PrometheusError(Exception):
    """Prometheus cannot be reached or refused a query; the message says which and why."""


class Prometheus:
    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PrometheusError(f"--prometheus {url!r}: expected an http:// or https:// URL")
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str, params: dict[str, str]) -> Any:
        address = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(address, timeout=self.timeout) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as error:
            try:
                body = json.loads(error.read())
            except ValueError:
                raise PrometheusError(f"--prometheus {self.url}: {path} answered {error.code}") from None
        except (OSError, ValueError) as error:
            raise PrometheusError(f"--prometheus {self.url}: cannot query Prometheus ({error})") from None
        if not isinstance(body, dict) or body.get("status") != "success":
            detail = body.get("error") if isinstance(body, dict) else body
            raise PrometheusError(f"--prometheus {self.url}: {params.get('query', path)}: {detail}")
        return body["data"]

    def instant(self, query: str, at: float) -> list[dict[str, Any]]:
        """The result of an instant query: a vector, or a matrix of raw samples for ``x[range]``."""
        data = self._get("/api/v1/query", {"query": query, "time": f"{at:.3f}"})
        result: list[dict[str, Any]] = data["result"]
        return result

    def range(self, query: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        data = self._get(
            "/api/v1/query_range",
            {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
        )
        result: list[dict[str, Any]] = data["result"]
        return result
