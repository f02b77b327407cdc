"""The status page as one self-contained HTML file.

No script, font, image or stylesheet is fetched: the page renders offline and from any static
host. Small screens first (one column, bars that shrink). Every colour used for text or a bar
reaches a contrast of 4.5:1 against what it sits on, and no state is told by colour alone: each
has its word, and each bar its text for screen readers and as a tooltip.
"""

from __future__ import annotations

import dataclasses
import html
import json
import time
from pathlib import Path

from beacon_otel.status_page.collect import Report
from beacon_otel.status_page.history import Bar, Component, Deployment, Incident, Window

OVERALL = {
    "ok": ("ok", "All systems operational"),
    "partial": ("warn", "Degraded: some providers or requests are failing"),
    "major": ("down", "Major outage"),
    "unknown": ("none", "Status unknown: no recent data"),
}
STATE = {"up": ("ok", "Operational"), "down": ("down", "Down"), "unknown": ("none", "No data")}

CSS = """
:root { color-scheme: light; --ok: #1a7f37; --warn: #9a6700; --down: #cf222e; --none: #6e7781;
  --text: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #ffffff; --panel: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 46rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; margin: 0.5rem 0 0; }
h2 { font-size: 1.2rem; margin: 2rem 0 0.75rem; }
h3 { font-size: 1rem; margin: 0; }
.muted { color: var(--muted); font-size: 0.875rem; margin: 0.25rem 0 0; }
.banner { margin: 1rem 0; padding: 0.75rem 1rem; border-radius: 6px; color: #fff; font-weight: 600; }
.banner.ok { background: var(--ok); } .banner.warn { background: var(--warn); }
.banner.down { background: var(--down); } .banner.none { background: var(--none); }
.component { border: 1px solid var(--line); border-radius: 6px; padding: 0.75rem; margin: 0 0 0.75rem; }
.head { display: flex; flex-wrap: wrap; justify-content: space-between; align-items: baseline; gap: 0.5rem; }
.detail { color: var(--muted); font-size: 0.875rem; }
.pill { display: inline-block; padding: 0 0.5rem; border-radius: 999px; color: #fff; font-size: 0.875rem;
  font-weight: 600; white-space: nowrap; }
.pill.ok { background: var(--ok); } .pill.warn { background: var(--warn); }
.pill.down { background: var(--down); } .pill.none { background: var(--none); }
.window { margin-top: 0.5rem; }
.window .head { font-size: 0.875rem; color: var(--muted); }
.bars { display: flex; gap: 2px; align-items: flex-end; height: 1.75rem; margin: 0.25rem 0 0; padding: 0;
  list-style: none; }
.bars li { flex: 1 1 0; min-width: 0; height: 100%; border-radius: 2px; }
.bars li.ok { background: var(--ok); } .bars li.warn { background: var(--warn); }
.bars li.down { background: var(--down); }
.bars li.none { background: var(--none); height: 35%; }
.incidents, .deploys { list-style: none; margin: 0; padding: 0; }
.incidents li, .deploys li { border-top: 1px solid var(--line); padding: 0.5rem 0; }
.stats { display: grid; grid-template-columns: repeat(auto-fit, minmax(9rem, 1fr)); gap: 0.5rem;
  margin: 0 0 1rem; }
.stats div { background: var(--panel); border-radius: 6px; padding: 0.5rem 0.75rem; }
.stats dt { color: var(--muted); font-size: 0.875rem; }
.stats dd { margin: 0; font-size: 1.25rem; font-weight: 600; }
.deploys li { display: flex; flex-wrap: wrap; gap: 0 1rem; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0);
  white-space: nowrap; }
footer { margin: 2rem 0 1rem; color: var(--muted); font-size: 0.875rem; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def when(seconds: float, with_date: bool = True) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC" if with_date else "%H:%M", time.gmtime(seconds))


def percent(value: float | None) -> str:
    if value is None:
        return "no data"
    if value >= 1:
        return "100 %"
    return f"{min(value * 100, 99.99):.2f} %"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds and minutes < 10 else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def bar_class(uptime: float | None) -> str:
    if uptime is None:
        return "none"
    return "ok" if uptime >= 0.999 else "warn" if uptime >= 0.95 else "down"


def _bar(bar: Bar, hourly: bool) -> str:
    period = (
        f"{when(bar.start)} to {when(bar.end, with_date=False)}"
        if hourly
        else time.strftime("%Y-%m-%d", time.gmtime(bar.start))
    )
    text = f"{period}: {percent(bar.uptime)}"
    return f'<li class="{bar_class(bar.uptime)}" title="{_e(text)}"><span class="sr">{_e(text)}</span></li>'


def _window(window: Window, name: str) -> str:
    hourly = len(window.bars) > 1 and window.bars[1].start - window.bars[0].start < 86400
    unit = "hour" if hourly else "day"
    bars = "".join(_bar(bar, hourly) for bar in window.bars)
    return (
        f'<div class="window"><div class="head"><span>{_e(window.label)}</span>'
        f"<span>{_e(percent(window.uptime))} uptime</span></div>"
        f'<ol class="bars" aria-label="{_e(name)}: uptime per {unit}, last {_e(window.label)}">'
        f"{bars}</ol></div>"
    )


def _component(component: Component) -> str:
    css, word = STATE[component.state]
    detail = "" if component.detail == "router" else f' <span class="detail">{_e(component.detail)}</span>'
    windows = "".join(_window(window, component.name) for window in component.windows)
    return (
        f'<article class="component"><div class="head"><h3>{_e(component.name)}{detail}</h3>'
        f'<span class="pill {css}">{word}</span></div>{windows}</article>'
    )


def _incident(incident: Incident) -> str:
    if incident.end is None:
        state, lasted = '<span class="pill down">Ongoing</span>', f"since {when(incident.start)}"
    else:
        state = '<span class="pill ok">Resolved</span>'
        lasted = f"{when(incident.start)}, lasted {duration(max(incident.end - incident.start, 1))}"
    return (
        f'<li><div class="head"><strong>{_e(incident.title)}</strong>{state}</div>'
        f'<span class="detail">{_e(lasted)}</span></li>'
    )


def _deployment(deployment: Deployment) -> str:
    css = "ok" if deployment.status == "succeeded" else "down"
    return (
        f"<li><span>{_e(when(deployment.at))}</span><span>{_e(deployment.environment)}</span>"
        f'<span class="pill {css}">{_e(deployment.status)}</span>'
        f"<span>{_e(duration(deployment.duration))}</span></li>"
    )


def _deployments(report: Report) -> str:
    stats = report.stats
    if not stats.total:
        return "<p>No deployment recorded in the last 30 days (beacon-otel deploy-event).</p>"
    rate = f"{stats.success_rate * 100:.0f} %" if stats.success_rate is not None else "n/a"
    facts = (
        ("Success rate", f"{rate} ({stats.succeeded} of {stats.total})"),
        ("Median duration", duration(stats.median_duration)),
        ("Time to recovery", duration(stats.mean_time_to_recovery) if stats.recoveries else "no failure"),
    )
    cells = "".join(f"<div><dt>{_e(name)}</dt><dd>{_e(value)}</dd></div>" for name, value in facts)
    rows = "".join(_deployment(deployment) for deployment in report.deployments[:20])
    return f'<dl class="stats">{cells}</dl><ol class="deploys">{rows}</ol>'


def page(report: Report) -> str:
    css, words = OVERALL[report.overall]
    incidents = "".join(_incident(incident) for incident in report.incidents[:20])
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(report.title)} status</title>
<style>{CSS}</style>
</head>
<body>
<main>
<header><h1>{_e(report.title)} status</h1><p class="muted">Updated {_e(when(report.generated))}</p></header>
<p class="banner {css}" role="status">{_e(words)}</p>
<section aria-labelledby="components"><h2 id="components">Components</h2>
{"".join(_component(component) for component in report.components)}
</section>
<section aria-labelledby="incidents"><h2 id="incidents">Recent incidents</h2>
{f'<ol class="incidents">{incidents}</ol>' if incidents else "<p>No incidents in the last 30 days.</p>"}
</section>
<section aria-labelledby="deployments"><h2 id="deployments">Deployments</h2>
{_deployments(report)}
</section>
<footer>Uptime from the OpenTelemetry Collector's checks and the router's provider health checks;
incidents from the alerts of the last 30 days. Times in UTC. Generated by beacon-otel status-page.</footer>
</main>
</body>
</html>
"""


def write(report: Report, folder: Path) -> Path:
    """``index.html`` and ``status.json`` (the same facts, for machines); returns the page."""
    folder.mkdir(parents=True, exist_ok=True)
    index = folder / "index.html"
    index.write_text(page(report), encoding="utf-8")
    (folder / "status.json").write_text(
        json.dumps(dataclasses.asdict(report), indent=1) + "\n", encoding="utf-8"
    )
    return index
