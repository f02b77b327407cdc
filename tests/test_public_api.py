"""The public modules say what is public, and every name they list exists."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = (
    "beacon_otel",
    "beacon_otel.providers",
    "beacon_otel.logs",
    "beacon_otel.distro",
    "beacon_otel.testing.otlp_receiver",
)


@pytest.mark.parametrize("name", PUBLIC)
def test_a_public_module_lists_names_that_exist(name: str) -> None:
    module = importlib.import_module(name)
    listed = getattr(module, "__all__", None)
    assert listed, f"{name} has no __all__"
    missing = [attribute for attribute in listed if not hasattr(module, attribute)]
    assert not missing, f"{name}.__all__ lists names it does not have: {missing}"


def test_the_public_modules_are_the_ones_documented() -> None:
    text = (ROOT / "docs" / "development.md").read_text(encoding="utf-8")
    section = text.split("## What is public", 1)[1]
    documented = set(re.findall(r"^\| `(beacon_otel[a-z_.]*)` \|", section, flags=re.MULTILINE))
    assert documented == set(PUBLIC)
