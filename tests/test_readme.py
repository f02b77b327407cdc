"""The README a new user follows literally: its first screen, its links, its variable table,
and one wording of each command it shares with other pages."""

from __future__ import annotations

import re
from pathlib import Path

from beacon_otel.settings import load_settings
from beacon_otel.tools.config_view import effective_variables
from tests.support.processes import ROOT

README = ROOT / "README.md"
FIRST_SCREENS = 60  # lines: about two screens of a laptop terminal
PAGES = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "collector" / "README.md"]


def test_the_first_screen_runs_tests_and_points_at_each_destination() -> None:
    top = "\n".join(README.read_text().splitlines()[:FIRST_SCREENS])
    install = "python3 -m venv .venv && .venv/bin/pip install -U pip && .venv/bin/pip install -e '.[test]'"
    assert f"{install} && examples/demo.sh" in top
    assert ".venv/bin/beacon-otel stack build && .venv/bin/pytest -q" in top
    assert ". .venv/bin/activate" in top
    assert "about 6 minutes on 2 cores" in top and "two minutes" not in top
    for destination in ("Jaeger", "OTLP backend", "trace_spans"):
        assert destination in top, destination
    for variable in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ):
        assert variable in top, variable


def test_relative_links_resolve() -> None:
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to {target}"


def test_the_configuration_table_names_every_variable() -> None:
    """Each variable `beacon-otel config` prints is in the table; a per-signal OTLP variable may
    be covered by its generic row (`OTEL_EXPORTER_OTLP_TIMEOUT` "and per signal")."""
    table = README.read_text().split("## Configuration", 1)[1]
    for name, _ in effective_variables(load_settings({})):
        generic = re.sub(r"^OTEL_EXPORTER_OTLP_(TRACES|METRICS|LOGS)_", "OTEL_EXPORTER_OTLP_", name)
        assert f"`{name}`" in table or f"`{generic}`" in table, name


def test_one_wording_of_the_compose_command() -> None:
    for page in [*PAGES, ROOT / "collector" / "compose.yaml"]:
        for command in re.findall(r"docker compose -f collector/compose\.yaml up\b[^`\n]*", page.read_text()):
            assert command.startswith("docker compose -f collector/compose.yaml up --build"), (page, command)


def test_commands_named_in_the_readme_exist() -> None:
    """Every `beacon-otel <command>` the README and the tools page show is a command of the CLI."""
    import argparse

    from beacon_otel.cli import build_parser

    (subcommands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    commands = set(subcommands.choices)
    for page in (README, ROOT / "docs" / "tools.md"):
        text = page.read_text()
        for command in set(
            re.findall(r"(?:[`']|^\s*|&& )(?:\.venv/bin/)?beacon-otel ([a-z][a-z-]+)", text, re.M)
        ):
            assert command in commands, (page.name, command)


def test_no_absolute_machine_paths() -> None:
    mine = ["telemetry", "providers", "logs", "sink", "tools", "backends", "development"]
    for page in [README, *(ROOT / "docs" / f"{name}.md" for name in mine)]:
        assert not re.search(r"/(root|home|work)/", page.read_text()), page
    assert not re.search(r"/(root|home|work)/", Path(ROOT, "examples", "demo.sh").read_text())
