"""``beacon-otel stack build``: the Collector distribution, Jaeger, Prometheus (with promtool) and
Alertmanager, compiled from their Go modules.

The Collector is built by the official Collector Builder from ``collector/distribution/manifest.yaml``;
Jaeger is the ``tool`` dependency of ``collector/jaeger/go.mod``. Both land in the cache folder
(``paths.bin_dir``) and reuse Go's module and build caches, so only the first build is slow.
Prometheus and Alertmanager: ``build_alerting``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from beacon_otel.stack.paths import StackError, bin_dir, cache_dir, collector_dir

# The one release of every Collector module in the manifest, and so of the Builder.
COLLECTOR_RELEASE = "0.161.0"
BUILDER_MODULE = "go.opentelemetry.io/collector/cmd/builder"
JAEGER_PACKAGE = "github.com/jaegertracing/jaeger/cmd/jaeger"
# Prometheus v0.316.0's go.mod asks for go 1.26.7; a Go below it would fetch a newer toolchain,
# which GOTOOLCHAIN=local forbids.
MINIMUM_GO = (1, 26, 7)

COLLECTOR_BINARY = "otelcol-beacon"
JAEGER_BINARY = "jaeger"

_INSTALL_GO = (
    "install Go {minimum} or newer (https://go.dev/doc/install, or your system's package if it is "
    "recent enough) and put `go` on PATH"
)


def collector_binary(env: Mapping[str, str] = os.environ) -> Path:
    return bin_dir(env) / COLLECTOR_BINARY


def jaeger_binary(env: Mapping[str, str] = os.environ) -> Path:
    return bin_dir(env) / JAEGER_BINARY


def go_command(env: Mapping[str, str] = os.environ) -> str:
    """The ``go`` on PATH, checked to be new enough; a StackError saying what to install otherwise."""
    minimum = ".".join(map(str, MINIMUM_GO))
    install = _INSTALL_GO.format(minimum=minimum)
    go = shutil.which("go", path=env.get("PATH"))
    if go is None:
        raise StackError(
            "Go is not installed (no `go` on PATH): the stack's Collector and Jaeger are built from their "
            "Go modules; " + install
        )
    answer = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, env=dict(env))
    version = answer.stdout.strip()
    if go_version_key(version) is None:
        raise StackError(f"{go} names no Go version (`go env GOVERSION` answered {version!r}): {install}")
    if not go_is_new_enough(version, MINIMUM_GO):
        raise StackError(f"{go} is {version}, older than the Go {minimum} the stack needs: {install}")
    return go


# go1.26.8, go1.26 (a .0 release named the old way), go1.27rc1, go1.27beta2, devel go1.27-abc...
_GO_VERSION = re.compile(r"go(\d+)\.(\d+)(?:\.(\d+)|(beta|rc)(\d+))?")
_STAGES = {"beta": 0, "rc": 1, None: 2}  # a pre-release comes before its .0 release


def go_version_key(version: str) -> tuple[int, int, int, int, int] | None:
    """``go env GOVERSION``'s answer as a key that sorts like Go's releases:
    (major, minor, patch, stage, pre-release number); None when it names no version."""
    match = _GO_VERSION.search(version)
    if match is None:
        return None
    major, minor, patch, stage, number = match.groups()
    return (int(major), int(minor), int(patch or 0), _STAGES[stage], int(number or 0))


def go_is_new_enough(version: str, minimum: tuple[int, int, int]) -> bool:
    """Whether the Go named by ``version`` is the release ``minimum`` or a later one."""
    key = go_version_key(version)
    return key is not None and key >= (*minimum, _STAGES[None], 0)


def go_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment of every go command: the machine's Go, no VCS stamping, static binaries."""
    return {
        **env,
        "GOTOOLCHAIN": env.get("GOTOOLCHAIN", "local"),
        "GOFLAGS": " ".join(filter(None, [env.get("GOFLAGS", ""), "-buildvcs=false"])),
        "CGO_ENABLED": "0",
    }


def render_manifest(manifest: Path, output: Path) -> str:
    """The manifest with its relative paths made absolute: the Builder resolves them against its
    working directory, not the manifest's folder."""
    text = manifest.read_text()
    text = re.sub(r"(?m)^(\s*output_path:\s*).*$", lambda m: f"{m[1]}{output}", text)
    return re.sub(
        r"(?m)^(\s*path:\s*)(\.\S*)\s*$",
        lambda m: f"{m[1]}{(manifest.parent / m[2]).resolve()}",
        text,
    )


def _run(step: str, command: list[str], cwd: Path, env: Mapping[str, str], log: Path) -> None:
    with log.open("w") as output:
        result = subprocess.run(command, cwd=cwd, env=dict(env), stdout=output, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise StackError(f"{step} failed (exit {result.returncode}); full log: {log}\n{tail}")


def build_builder(go: str, env: Mapping[str, str], logs: Path) -> Path:
    builder = bin_dir(env) / "builder"
    stamp = bin_dir(env) / "builder.version"
    if builder.exists() and stamp.exists() and stamp.read_text().strip() == COLLECTOR_RELEASE:
        return builder
    command = [go, "install", f"{BUILDER_MODULE}@v{COLLECTOR_RELEASE}"]
    _run("installing the Collector Builder", command, cache_dir(env), {**env, "GOBIN": str(bin_dir(env))},
         logs / "builder-install.log")  # fmt: skip
    stamp.write_text(COLLECTOR_RELEASE + "\n")
    return builder


def build_collector(go: str, env: Mapping[str, str], logs: Path) -> Path:
    builder = build_builder(go, env, logs)
    work = cache_dir(env) / "otelcol-beacon"
    manifest = cache_dir(env) / "manifest.yaml"
    manifest.write_text(render_manifest(collector_dir(env) / "distribution" / "manifest.yaml", work))
    # The Builder runs `go` itself: it must find the same one.
    builder_env = {**env, "PATH": f"{Path(go).parent}{os.pathsep}{env.get('PATH', '')}"}
    _run("building the Collector", [str(builder), f"--config={manifest}"], cache_dir(env), builder_env,
         logs / "collector-build.log")  # fmt: skip
    target = collector_binary(env)
    shutil.copy2(work / COLLECTOR_BINARY, target)
    return target


def build_jaeger(go: str, env: Mapping[str, str], logs: Path) -> Path:
    target = jaeger_binary(env)
    command = [go, "build", "-trimpath", "-ldflags=-s -w", "-o", str(target), JAEGER_PACKAGE]
    _run("building Jaeger", command, collector_dir(env) / "jaeger", env, logs / "jaeger-build.log")
    return target


def build(env: Mapping[str, str] = os.environ, say: Callable[[str], None] = print) -> dict[str, Path]:
    """Build every program; returns their paths. Raises StackError with the failing step's log."""
    go = go_command(env)
    environment = go_env(env)
    logs = cache_dir(env) / "logs"
    for folder in (bin_dir(env), logs):
        folder.mkdir(parents=True, exist_ok=True)
    from beacon_otel.stack.build_alerting import build_alertmanager, build_prometheus

    steps = (
        ("collector", build_collector),
        ("jaeger", build_jaeger),
        ("prometheus", build_prometheus),
        ("alertmanager", build_alertmanager),
    )
    built = {}
    for name, step in steps:
        started = time.monotonic()
        say(f"stack build: {name} ...")
        built[name] = step(go, environment, logs)
        say(f"stack build: {name} built in {time.monotonic() - started:.1f} s: {built[name]}")
    return built


def main(env: Mapping[str, str] = os.environ) -> int:
    try:
        build(env)
    except StackError as error:
        print(f"beacon-otel stack build: {error}", file=sys.stderr)
        return 1
    return 0
