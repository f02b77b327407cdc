"""Provider model and routing logic, shaped like Project Beacon's HybridRouter.

Health checks deliberately swallow every exception (one warning log each and
``healthy = False``), because that is the behaviour of the real router that
telemetry has to make visible.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

logger = logging.getLogger(__name__)

ProviderType = Literal["golem", "modal"]

_PROVIDER_TYPES: dict[str, ProviderType] = {"golem": "golem", "modal": "modal"}

# Rough per-second prices so that "cheapest healthy provider" means something.
DEFAULT_COST_PER_SECOND: dict[ProviderType, float] = {"golem": 0.0001, "modal": 0.0003}

PROVIDERS_ENV = "DEMO_PROVIDERS"

# The real router's code for a run the provider reports as failed (in a 200 answer).
EXECUTION_FAILED = "PROVIDER_EXECUTION_FAILED"


@dataclass
class Provider:
    """One GPU provider endpoint; ``healthy`` is the router's cached view."""

    name: str
    type: ProviderType
    region: str
    endpoint: str
    healthy: bool = True
    cost_per_second: float = 0.0001
    last_check: float | None = None


@dataclass
class InferenceRequest:
    """What a client asks the router to run."""

    model: str
    prompt: str
    temperature: float = 0.7
    max_tokens: int = 128
    region_preference: str | None = None


class HybridRouter:
    """Routes inference to healthy providers and keeps their health up to date."""

    def __init__(
        self,
        providers: list[Provider],
        client: httpx.AsyncClient | None = None,
        timeout: float = 2.0,
        *,
        inference_timeout: float = 30.0,
        api_key: str | None = None,
        token: str | None = None,
    ) -> None:
        self.providers = providers
        self.timeout = timeout
        self.inference_timeout = inference_timeout
        # Credentials as the real router sends them: an API key in the health-check query
        # string, a bearer token on every call.
        self.params = {"api_key": api_key} if api_key else None
        self.headers = {"Authorization": f"Bearer {token}"} if token else None
        # Only close the client at aclose() if we created it ourselves.
        self._owns_client = client is None
        self.client = client if client is not None else httpx.AsyncClient()

    async def aclose(self) -> None:
        """Close the HTTP client if this router created it."""
        if self._owns_client:
            await self.client.aclose()

    def healthy_providers(self) -> list[Provider]:
        """Providers whose last health check (or inference) succeeded."""
        return [p for p in self.providers if p.healthy]

    async def health_check_providers(self) -> None:
        """Check every provider concurrently; failures only flip ``healthy``."""
        await asyncio.gather(*(self._check_provider_health(p) for p in self.providers))

    async def _check_provider_health(self, provider: Provider) -> None:
        """Probe one provider; never raises, like the real router."""
        try:
            response = await self.client.get(
                f"{provider.endpoint}/health", params=self.params, headers=self.headers, timeout=self.timeout
            )
            response.raise_for_status()
            if provider.type == "modal":
                # Modal endpoints report their own state; bad JSON raises here.
                payload = response.json()
                healthy = response.status_code == 200 and payload.get("status") == "healthy"
            else:
                healthy = response.status_code == 200
            provider.healthy = healthy
            logger.debug(f"Health check for {provider.name}: healthy={healthy}")
        except Exception as e:
            logger.warning(
                f"Health check failed for {provider.name}: {e}",
                extra={"provider": provider.name, "region": provider.region},
            )
            provider.healthy = False
        finally:
            provider.last_check = time.time()

    def select_provider(self, region_preference: str | None = None) -> Provider | None:
        """Cheapest healthy provider, restricted to the preferred region if any match."""
        candidates = self.healthy_providers()
        if region_preference:
            regional = [p for p in candidates if p.region == region_preference]
            candidates = regional or candidates
        if not candidates:
            return None
        return min(candidates, key=lambda p: p.cost_per_second)

    async def run_inference(self, request: InferenceRequest) -> dict[str, Any]:
        """Run one request on a chosen provider; errors come back in the result dict."""
        provider = self.select_provider(request.region_preference)
        if provider is None:
            return _result(success=False, error="no healthy provider")
        started = time.perf_counter()
        try:
            response = await self.client.post(
                f"{provider.endpoint}/inference",
                json={
                    "model": request.model,
                    "prompt": request.prompt,
                    "temperature": request.temperature,
                    "max_tokens": request.max_tokens,
                },
                headers=self.headers,
                timeout=self.inference_timeout,
            )
            response.raise_for_status()
            answer = response.json()
        except Exception as e:
            # Like the real router: mark it down and let the next check revive it.
            provider.healthy = False
            logger.warning(
                f"Inference failed on {provider.name}: {e!r}",
                extra={"provider": provider.name, "region": provider.region},
            )
            return _result(
                success=False,
                error=_describe(e),
                provider_used=provider.name,
                execution_time=time.perf_counter() - started,
            )
        elapsed = time.perf_counter() - started
        # Like the real router, the provider's time is charged whether its run succeeded or not.
        cost = elapsed * provider.cost_per_second
        failure = _execution_failure(answer)
        if failure is not None:
            logger.warning(
                f"Provider {provider.name} reported an execution failure: {failure}",
                extra={"provider": provider.name, "region": provider.region},
            )
            return _result(
                success=False,
                error=failure,
                error_code=EXECUTION_FAILED,
                failure={"code": EXECUTION_FAILED, "stage": "provider_execution", "message": failure},
                provider_used=provider.name,
                execution_time=elapsed,
                cost_estimate=cost,
            )
        return _result(
            success=True,
            response=str(answer.get("output") or answer.get("response") or ""),
            provider_used=provider.name,
            execution_time=elapsed,
            cost_estimate=cost,
        )


def _execution_failure(answer: object) -> str | None:
    """What went wrong when a provider answered 200 but its run failed: a golem node says
    ``"success": false``, a Modal endpoint a ``status`` other than ``success``. None on success."""
    if not isinstance(answer, dict):
        return "the provider's answer is not a JSON object"
    failed = answer.get("success") is False or answer.get("status", "success") != "success"
    return str(answer.get("error") or "provider execution failed") if failed else None


def _result(
    *,
    success: bool,
    response: str | None = None,
    error: str | None = None,
    error_code: str | None = None,
    failure: dict[str, str] | None = None,
    provider_used: str | None = None,
    execution_time: float = 0.0,
    cost_estimate: float = 0.0,
) -> dict[str, Any]:
    """Build the response dict in the exact shape the real router returns."""
    return {
        "success": success,
        "response": response,
        "error": error,
        "error_code": error_code,
        "failure": failure,
        "provider_used": provider_used,
        "execution_time": execution_time,
        "cost_estimate": cost_estimate,
    }


def _describe(exc: BaseException) -> str:
    """Error text that is never empty (httpx timeouts often have no message)."""
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def providers_from_env(env: Mapping[str, str] | None = None) -> list[Provider]:
    """Parse ``DEMO_PROVIDERS`` (``name|type|region|endpoint`` entries, comma-separated).

    An optional fifth field overrides ``cost_per_second``.  Configuration
    mistakes raise ``ValueError`` at start-up instead of silently routing
    nowhere.
    """
    source = os.environ if env is None else env
    raw = source.get(PROVIDERS_ENV, "").strip()
    if not raw:
        return []
    providers = [_parse_provider(entry.strip()) for entry in raw.split(",") if entry.strip()]
    names = [p.name for p in providers]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{PROVIDERS_ENV}: duplicate provider names {duplicates}")
    return providers


def _parse_provider(entry: str) -> Provider:
    """Parse one ``name|type|region|endpoint[|cost]`` entry."""
    parts = [part.strip() for part in entry.split("|")]
    if len(parts) not in (4, 5) or not all(parts):
        raise ValueError(
            f"{PROVIDERS_ENV}: malformed entry {entry!r}, "
            "expected 'name|type|region|endpoint[|cost_per_second]'"
        )
    name, kind, region, endpoint = parts[:4]
    provider_type = _PROVIDER_TYPES.get(kind)
    if provider_type is None:
        raise ValueError(f"{PROVIDERS_ENV}: malformed entry {entry!r}, type must be 'golem' or 'modal'")
    if not endpoint.startswith(("http://", "https://")):
        raise ValueError(f"{PROVIDERS_ENV}: malformed entry {entry!r}, endpoint must be an http(s) URL")
    cost = DEFAULT_COST_PER_SECOND[provider_type]
    if len(parts) == 5:
        try:
            cost = float(parts[4])
        except ValueError:
            raise ValueError(f"{PROVIDERS_ENV}: malformed entry {entry!r}, cost must be a number") from None
    return Provider(
        name=name,
        type=provider_type,
        region=region,
        endpoint=endpoint.rstrip("/"),
        cost_per_second=cost,
    )
