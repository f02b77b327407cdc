"""Many fake GPU providers in one process, steerable at runtime.

Each provider lives under ``/p/{name}`` (so its endpoint is
``http://127.0.0.1:9001/p/{name}``) and serves ``GET /health`` and
``POST /inference`` (a golem node's answer, ``{"success": true, "response": ...}``), and
``POST`` on the endpoint itself, as a Modal web endpoint (``{"status": "success", ...}``).
``PUT /control/{name}`` sets how it misbehaves, so tests can produce every failure the router
has to survive without real GPUs.

A provider that is *unreachable* is not modelled here: point it at a closed
port such as ``http://127.0.0.1:1`` instead.  Mode ``down`` answers 503.

Run:  python -m demo_router.fake_providers --port 9001 --mode golem-us=fail500
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

# execfail: healthy, but every inference reports an execution failure in a 200 answer.
Mode = Literal["healthy", "fail500", "slow", "badjson", "unhealthy", "down", "execfail"]
MODES: tuple[str, ...] = get_args(Mode)
SLOW_DEFAULT_DELAY = 5.0


@dataclass
class Behaviour:
    """How one fake provider answers; ``delay`` is waited before every answer."""

    mode: Mode = "healthy"
    delay: float = 0.0
    hits: int = 0
    last_headers: dict[str, str] | None = None
    last_inference_headers: dict[str, str] | None = None


class ControlBody(BaseModel):
    """JSON body of PUT /control/{name}; delay defaults to 5 s for "slow"."""

    mode: Mode = "healthy"
    delay: float | None = Field(default=None, ge=0)


class InferenceBody(BaseModel):
    """Only the model matters to the fake; other fields are accepted and ignored."""

    model: str = "unknown"


def make_behaviour(mode: Mode, delay: float | None = None) -> Behaviour:
    """Behaviour with the mode's default delay when none is given."""
    if delay is None:
        delay = SLOW_DEFAULT_DELAY if mode == "slow" else 0.0
    return Behaviour(mode=mode, delay=delay)


def create_app(initial_modes: Mapping[str, Mode] | None = None) -> FastAPI:
    """A fresh fake-provider app with its own, independent behaviour table."""
    behaviours: dict[str, Behaviour] = {
        name: make_behaviour(mode) for name, mode in (initial_modes or {}).items()
    }
    app = FastAPI(title="fake GPU providers")
    app.state.behaviours = behaviours

    def behaviour_for(name: str, request: Request, inference: bool = False) -> Behaviour:
        """Unknown names are created on first use, in the default healthy mode.

        The request's headers are kept (an inference's apart too) so tests can check what the
        router propagated.
        """
        behaviour = behaviours.setdefault(name, Behaviour())
        behaviour.hits += 1
        behaviour.last_headers = dict(request.headers)
        if inference:
            behaviour.last_inference_headers = behaviour.last_headers
        return behaviour

    @app.get("/control")
    async def list_modes() -> dict[str, Any]:
        """Current behaviour (and request count) of every provider seen so far."""
        return {
            "available_modes": list(MODES),
            "providers": {
                name: {
                    "mode": b.mode,
                    "delay": b.delay,
                    "hits": b.hits,
                    "last_headers": b.last_headers,
                    "last_inference_headers": b.last_inference_headers,
                }
                for name, b in behaviours.items()
            },
        }

    @app.put("/control/{name}")
    async def set_mode(name: str, body: ControlBody) -> dict[str, Any]:
        """Change one provider's behaviour; takes effect on its next request."""
        behaviour = make_behaviour(body.mode, body.delay)
        behaviour.hits = behaviours[name].hits if name in behaviours else 0
        behaviours[name] = behaviour
        return {"name": name, "mode": behaviour.mode, "delay": behaviour.delay}

    @app.delete("/control")
    async def reset() -> dict[str, str]:
        """Forget every provider, so all are healthy again."""
        behaviours.clear()
        return {"status": "reset"}

    @app.get("/p/{name}/health")
    async def health(name: str, request: Request) -> Response:
        """Answers ``{"status": "healthy"}``, which suits golem and modal clients alike."""
        behaviour = behaviour_for(name, request)
        await asyncio.sleep(behaviour.delay)
        return _health_response(behaviour.mode)

    @app.post("/p/{name}/inference")
    async def inference(name: str, body: InferenceBody, request: Request) -> Response:
        """A canned completion, unless the mode says to fail."""
        behaviour = behaviour_for(name, request, inference=True)
        await asyncio.sleep(behaviour.delay)
        failure = _failure_response(behaviour.mode)
        if failure is not None:
            return failure
        text = f"fake completion for {body.model}"
        if behaviour.mode == "execfail":
            return JSONResponse({"success": False, "error": "CUDA out of memory"})
        return JSONResponse({"success": True, "response": text, "output": text, "tokens": 12})

    @app.post("/p/{name}")
    async def modal_inference(name: str, body: InferenceBody, request: Request) -> Response:
        """A Modal web endpoint: inference at the endpoint itself, the outcome in ``status``."""
        behaviour = behaviour_for(name, request, inference=True)
        await asyncio.sleep(behaviour.delay)
        failure = _failure_response(behaviour.mode)
        if failure is not None:
            return failure
        if behaviour.mode == "execfail":
            return JSONResponse({"status": "error", "error": "CUDA out of memory"})
        return JSONResponse({"status": "success", "response": f"fake completion for {body.model}"})

    return app


def _failure_response(mode: Mode) -> Response | None:
    """The error answer shared by health and inference, or None for a normal answer."""
    if mode == "fail500":
        return JSONResponse({"error": "simulated provider failure"}, status_code=500)
    if mode == "down":
        return JSONResponse({"status": "down"}, status_code=503)
    if mode == "badjson":
        return Response(content=b"not json", media_type="application/json")
    return None


def _health_response(mode: Mode) -> Response:
    """Health answer for a mode ("slow" is healthy once its delay has passed)."""
    failure = _failure_response(mode)
    if failure is not None:
        return failure
    status = "unhealthy" if mode == "unhealthy" else "healthy"
    return JSONResponse({"status": status})


app = create_app()


class ThreadedServer(uvicorn.Server):
    """uvicorn server running in a daemon thread; ``stop()`` shuts it down."""

    thread: threading.Thread | None = None

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the server to exit and wait for its thread."""
        self.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout)


def start_in_thread(
    port: int = 0,
    initial_modes: Mapping[str, Mode] | None = None,
    timeout: float = 10.0,
) -> tuple[ThreadedServer, int]:
    """Serve a fresh fake-provider app on 127.0.0.1 in-process; port 0 picks a free one.

    Returns the server (call ``server.stop()`` when done) and the bound port.
    """
    config = uvicorn.Config(create_app(initial_modes), host="127.0.0.1", port=port, log_level="warning")
    server = ThreadedServer(config)
    server.thread = threading.Thread(target=server.run, name="fake-providers", daemon=True)
    server.thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not server.thread.is_alive() or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"fake providers failed to start on port {port}")
        time.sleep(0.01)
    return server, _bound_port(server)


def _bound_port(server: uvicorn.Server) -> int:
    """The port actually bound, which differs from the config when it was 0."""
    socket = server.servers[0].sockets[0]
    return int(socket.getsockname()[1])


def _parse_mode(value: str) -> tuple[str, Mode]:
    """argparse type for ``--mode name=mode``."""
    name, sep, mode = value.partition("=")
    if not sep or not name or mode not in MODES:
        raise argparse.ArgumentTypeError(f"expected name=mode with mode in {', '.join(MODES)}, got {value!r}")
    return name, mode  # type: ignore[return-value]  # checked against MODES above


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument(
        "--mode",
        type=_parse_mode,
        action="append",
        default=[],
        metavar="NAME=MODE",
        help=f"initial mode of a provider (repeatable); modes: {', '.join(MODES)}",
    )
    args = parser.parse_args(argv)
    uvicorn.run(create_app(dict(args.mode)), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
