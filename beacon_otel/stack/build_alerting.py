"""Prometheus, promtool and Alertmanager for ``beacon-otel stack build``, from their Go modules.

Both are ``tool`` dependencies (``collector/prometheus/go.mod``, ``collector/alertmanager/go.mod``),
built like Jaeger into the cache folder. Prometheus is built with ``remove_all_sd``: the stack
scrapes fixed targets, and leaving out the cloud service discoveries halves the compile time.

Alertmanager embeds its web UI from ``ui/app/dist``, a folder its module does not ship (it is
built by npm in Alertmanager's own release process), so ``go build`` of the module alone fails.
The build copies the module's source (from Go's module cache, as the proxy served it) into the
cache folder, adds a one-page placeholder for the UI, and builds with a ``replace`` pointing there.
The API, which is all the stack and its tests use, is unchanged.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Mapping
from pathlib import Path

from beacon_otel.stack.paths import StackError, bin_dir, cache_dir, collector_dir

PROMETHEUS_PACKAGES = (
    "github.com/prometheus/prometheus/cmd/prometheus",
    "github.com/prometheus/prometheus/cmd/promtool",
)
ALERTMANAGER_MODULE = "github.com/prometheus/alertmanager"
ALERTMANAGER_PACKAGE = f"{ALERTMANAGER_MODULE}/cmd/alertmanager"

_UI_PLACEHOLDER = (
    "<!doctype html><meta charset=utf-8><title>Alertmanager</title>"
    "<p>This Alertmanager was built from its Go module, without the web UI. "
    "Its API answers: <a href=api/v2/alerts>api/v2/alerts</a>, <a href=api/v2/status>api/v2/status</a>.\n"
)


def prometheus_binary(env: Mapping[str, str] = os.environ) -> Path:
    return bin_dir(env) / "prometheus"


def promtool_binary(env: Mapping[str, str] = os.environ) -> Path:
    return bin_dir(env) / "promtool"


def alertmanager_binary(env: Mapping[str, str] = os.environ) -> Path:
    return bin_dir(env) / "alertmanager"


def build_prometheus(go: str, env: Mapping[str, str], logs: Path) -> Path:
    """prometheus and promtool in one ``go build`` (they share most packages)."""
    from beacon_otel.stack.build import _run

    command = [go, "build", "-trimpath", "-tags=remove_all_sd", "-ldflags=-s -w",
               "-o", f"{bin_dir(env)}{os.sep}", *PROMETHEUS_PACKAGES]  # fmt: skip
    _run("building Prometheus and promtool", command, collector_dir(env) / "prometheus", env,
         logs / "prometheus-build.log")  # fmt: skip
    return prometheus_binary(env)


def _module(go: str, folder: Path, env: Mapping[str, str], logs: Path) -> tuple[str, Path]:
    """The version of Alertmanager that ``folder/go.mod`` requires, and its source in Go's module
    cache (downloaded through the module proxy when missing)."""
    from beacon_otel.stack.build import _run

    _run("downloading Alertmanager", [go, "mod", "download", ALERTMANAGER_MODULE], folder, env,
         logs / "alertmanager-download.log")  # fmt: skip
    result = subprocess.run(
        [go, "list", "-m", "-f", "{{.Version}} {{.Dir}}", ALERTMANAGER_MODULE],
        cwd=folder, env=dict(env), capture_output=True, text=True,
    )  # fmt: skip
    version, _, directory = result.stdout.strip().partition(" ")
    if result.returncode != 0 or not directory:
        raise StackError(f"cannot locate {ALERTMANAGER_MODULE} in Go's module cache: {result.stderr.strip()}")
    return version, Path(directory)


def _writable_copy(source: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    for path in [target, *target.rglob("*")]:  # the module cache's files are read-only
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def build_alertmanager(go: str, env: Mapping[str, str], logs: Path) -> Path:
    from beacon_otel.stack.build import _run

    folder = collector_dir(env) / "alertmanager"
    version, module_dir = _module(go, folder, env, logs)
    source = cache_dir(env) / "alertmanager-src"
    stamp = source / ".beacon-version"
    if not (stamp.is_file() and stamp.read_text() == version):
        _writable_copy(module_dir, source)
        for ui in ("elm", "mantine"):
            (source / "ui" / "app" / "dist" / ui).mkdir(parents=True, exist_ok=True)
            (source / "ui" / "app" / "dist" / ui / "index.html").write_text(_UI_PLACEHOLDER)
        stamp.write_text(version)
    work = cache_dir(env) / "alertmanager-build"
    work.mkdir(parents=True, exist_ok=True)
    for name in ("go.mod", "go.sum"):
        shutil.copy2(folder / name, work / name)
    _run("preparing Alertmanager", [go, "mod", "edit", f"-replace={ALERTMANAGER_MODULE}={source}"], work, env,
         logs / "alertmanager-build.log")  # fmt: skip
    target = alertmanager_binary(env)
    command = [go, "build", "-trimpath", "-ldflags=-s -w", "-o", str(target), ALERTMANAGER_PACKAGE]
    _run("building Alertmanager", command, work, env, logs / "alertmanager-build.log")
    return target
