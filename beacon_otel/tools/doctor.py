"""``beacon-otel doctor``: is this environment ready to send telemetry? One line per check.

Run it with the environment the app will get (same variables, same PYTHONPATH). It checks the
configuration (every problem), shows the effective settings (credentials masked), which
instrumentations will load, whether the OTLP endpoints accept connections and a real test span
(``beacon-otel doctor``, attribute ``beacon.doctor=true``), whether the sink accepts the token
(``--sink``), and whether Postgres (``DATABASE_URL``) has ``trace_spans`` and the sink's unique
index. Network checks run at once, each with a short timeout, so a dead endpoint costs seconds.

Exit status: 0 when nothing failed (warnings allowed), 1 otherwise.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from beacon_otel.settings import (
    ConfigError,
    SinkSettings,
    load_database_url,
    load_settings,
    load_sink_settings,
)

if TYPE_CHECKING:  # the checks import the SDK and exporters: only `doctor` itself pays for that
    from beacon_otel.settings import Settings
    from beacon_otel.tools.doctor_checks import Check, SinkTarget

DEFAULT_TIMEOUT = 2.0


def add_parser(commands: Any) -> None:
    """Register ``beacon-otel doctor``."""
    parser = commands.add_parser(
        "doctor",
        help="check configuration, instrumentations, OTLP export, the sink and Postgres",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--json", action="store_true", help="print a JSON list of {check, status, detail, remedy}"
    )
    parser.add_argument(
        "--sink",
        metavar="URL",
        type=_sink_url,
        help="check the beacon-otel sink at URL (e.g. http://sink:4320; /v1/traces is appended)",
    )
    parser.add_argument(
        "--sink-token",
        metavar="TOKEN",
        help="the sink's bearer token (default: the traces headers when the app exports to the sink, "
        "else BEACON_OTEL_SINK_TOKEN)",
    )
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        help=f"timeout of each network check (default {DEFAULT_TIMEOUT:g})",
    )
    parser.set_defaults(run=run)


def _sink_url(text: str) -> str:
    """The sink's address as given on the command line; a base URL gets ``/v1/traces`` appended."""
    parts = urllib.parse.urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(
            f"expected the sink's http:// URL, e.g. http://sink:4320, got {text!r}"
        )
    if parts.path.rstrip("/") == "":
        return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/v1/traces", "", ""))
    return text.strip()


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 60:
        raise argparse.ArgumentTypeError(f"expected seconds between 0 and 60, got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    """The sub-command: diagnose this process's environment, print, and set the exit status."""
    checks = diagnose(os.environ, sink=args.sink, sink_token=args.sink_token, timeout=args.timeout)
    print(render_json(checks) if args.json else render_text(checks), flush=True)
    return 1 if any(check.status == "fail" for check in checks) else 0


# --- running the checks ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Probe:
    """A check that waits on the network; ``name`` and ``remedy`` report it if it never returns."""

    name: str
    function: Callable[[], list[Check]]
    remedy: str


def diagnose(
    environ: Mapping[str, str],
    sink: str | None = None,
    sink_token: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[Check]:
    """Every check, in report order. ``environ`` only goes to the settings loaders."""
    from beacon_otel.tools import doctor_checks as checks

    settings: Settings | None
    try:
        settings = load_settings(environ)
    except ConfigError as error:
        settings = None
        items: list[Check | Probe] = [*checks.config_problems(error.problems), *_unchecked()]
    else:
        items = [*_local_checks(settings, environ), *_otlp_probes(settings, timeout)]
    items.append(_sink_item(_sink_target(environ, settings, sink, sink_token), timeout))
    items.append(_postgres_item(environ, timeout))
    return run_probes(items, budget=3 * timeout + 2)


def _local_checks(settings: Settings, environ: Mapping[str, str]) -> list[Check]:
    """The instant checks: the configuration is valid, what it says (and what in it has no
    effect), what will be instrumented."""
    from beacon_otel.cli import mask_settings
    from beacon_otel.config_warnings import configuration_warnings
    from beacon_otel.tools import doctor_checks as checks

    valid = checks.Check("config", "ok", "every variable is valid")
    return [
        valid,
        *checks.configuration_warnings(configuration_warnings(settings, environ)),
        *checks.settings_summary(settings, mask_settings(settings)),
        *checks.instrumentations(settings),
        checks.http_conventions(settings),
        checks.fast_path(settings, environ),
    ]


def _unchecked() -> list[Check]:
    from beacon_otel.tools.doctor_checks import Check

    reason = "not checked: the configuration is invalid (see above)"
    return [Check("instrumentations", "info", reason), Check("otlp-export", "info", reason)]


def _otlp_probes(settings: Settings, timeout: float) -> list[Check | Probe]:
    """One TCP probe per distinct OTLP destination, then the test span."""
    from beacon_otel.tools import doctor_checks as checks

    endpoints = checks.otlp_endpoints(settings)
    items: list[Check | Probe] = []
    for endpoint in endpoints:
        name = checks.reach_check_name(endpoint, endpoints)
        probe = functools.partial(checks.probe_tcp, endpoint, name, timeout)
        items.append(Probe(name, probe, "check OTEL_EXPORTER_OTLP_ENDPOINT's host and port"))
    if not endpoints:
        items.append(checks.Check("otlp-reach", "info", "no signal is exported over OTLP"))
    items.append(
        Probe(
            "otlp-export",
            functools.partial(checks.probe_export, settings, timeout),
            "check the endpoint, protocol and headers of the traces exporter",
        )
    )
    return items


def _sink_target(
    environ: Mapping[str, str], settings: Settings | None, url: str | None, token: str | None
) -> SinkTarget | None:
    """Where the sink is and which token to show it: ``--sink``/``--sink-token`` first, then
    the traces headers when the app exports straight to that sink, then the sink's own
    variables when the doctor runs in the sink's environment."""
    from beacon_otel.tools.doctor_checks import SinkTarget, bearer_token, same_url

    own = _own_sink_settings(environ)
    if url is None:
        if own is None:
            return None
        url = _listen_url(own)
    if token:
        return SinkTarget(url, token, "token from --sink-token")
    traces = settings.otlp_for("traces") if settings is not None else None
    if traces is not None and same_url(traces.endpoint, url) and (found := bearer_token(traces.headers)):
        return SinkTarget(url, found, "token from the traces exporter's headers")
    if own is not None and own.token:
        return SinkTarget(url, own.token, "token from BEACON_OTEL_SINK_TOKEN")
    return SinkTarget(url, None, "no token given")


def _own_sink_settings(environ: Mapping[str, str]) -> SinkSettings | None:
    """The sink's settings when this is the sink's environment (an app's usually is not)."""
    try:
        return load_sink_settings(environ)
    except ConfigError:
        return None


def _listen_url(sink: SinkSettings) -> str:
    host = "127.0.0.1" if sink.host in ("0.0.0.0", "::", "") else sink.host
    return f"http://{f'[{host}]' if ':' in host else host}:{sink.port}/v1/traces"


def _sink_item(target: SinkTarget | None, timeout: float) -> Check | Probe:
    from beacon_otel.tools import doctor_checks as checks

    if target is None:
        return checks.Check("sink", "info", "not checked: give --sink URL to check the beacon-otel sink")
    return Probe("sink", functools.partial(checks.probe_sink, target, timeout), "check the sink's address")


def _postgres_item(environ: Mapping[str, str], timeout: float) -> Check | Probe:
    from beacon_otel.tools import doctor_checks as checks

    try:
        dsn = load_database_url(environ, required=False)
    except ConfigError as error:
        return checks.postgres_invalid(error.problems[0])
    if dsn is None:
        return checks.postgres_not_configured()
    return Probe("postgres", functools.partial(checks.probe_postgres, dsn, timeout), "check DATABASE_URL")


def run_probes(items: Sequence[Check | Probe], budget: float) -> list[Check]:
    """Run every probe at once, each in a daemon thread, and wait at most ``budget`` seconds in
    all: a probe stuck despite its own timeouts (a DNS lookup, say) is reported, not waited for."""
    from beacon_otel.tools.doctor_checks import Check

    probes = [item for item in items if isinstance(item, Probe)]
    results: dict[int, list[Check]] = {}
    threads = [
        threading.Thread(target=_fill, args=(results, index, probe), name=f"doctor-{probe.name}", daemon=True)
        for index, probe in enumerate(probes)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + budget
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    report: list[Check] = []
    for item in items:
        if isinstance(item, Probe):
            late = Check(item.name, "fail", f"no result within {budget:g} s", item.remedy)
            report.extend(results.get(probes.index(item), [late]))
        else:
            report.append(item)
    return report


def _fill(results: dict[int, list[Check]], index: int, probe: Probe) -> None:
    """A probe's bug becomes a failed row rather than a traceback in the middle of the report."""
    from beacon_otel.tools.doctor_checks import Check

    try:
        results[index] = probe.function()
    except Exception as error:
        results[index] = [
            Check(
                probe.name, "fail", f"the check itself failed: {type(error).__name__}: {error}", probe.remedy
            )
        ]


# --- output --------------------------------------------------------------------------------------------


def render_text(checks: Sequence[Check]) -> str:
    """Aligned lines, ``status  check  detail — remedy``, then a one-line verdict."""
    width = max(len(check.check) for check in checks)
    lines = [
        f"{check.status:<5} {check.check:<{width}}  {check.detail}"
        + (f" — {check.remedy}" if check.remedy else "")
        for check in checks
    ]
    failed = sum(check.status == "fail" for check in checks)
    warned = sum(check.status == "warn" for check in checks)
    verdict = f"{failed} failed" if failed else "nothing failed"
    lines.append(f"\nbeacon-otel doctor: {verdict}, {warned} warning{'s' if warned != 1 else ''}")
    return "\n".join(lines)


def render_json(checks: Sequence[Check]) -> str:
    return json.dumps([asdict(check) for check in checks], indent=2)
