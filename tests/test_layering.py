"""One direction through the package: every import goes down the layers of docs/development.md.

Each module of ``beacon_otel`` is parsed (not imported): every ``import`` and ``from ... import``
anywhere in it counts, inside functions and ``if TYPE_CHECKING:`` blocks too, and so does
``importlib.import_module`` with a literal (or f-string) module name.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from tests.support.processes import ROOT

PACKAGE = ROOT / "beacon_otel"

# Top to bottom; a module may import its own layer and those below it. A name stands for that
# module and everything under it; the longest name that matches decides.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "entry points",
        frozenset(
            {
                "beacon_otel",  # configure(); its __version__ is shared (below)
                "beacon_otel.startup",
                "beacon_otel.launcher",
                "beacon_otel.bootstrap",
                "beacon_otel.distro",
                "beacon_otel.cli",
                "beacon_otel.tools",
                "beacon_otel.sink",
                "beacon_otel.stack",
                "beacon_otel.status_page",
                "beacon_otel.testing",
            }
        ),
    ),
    ("sdk", frozenset({"beacon_otel.sdk", "beacon_otel.shutdown"})),
    (
        "instrumentation",
        frozenset({"beacon_otel.instrumentation", "beacon_otel.providers", "beacon_otel.logs"}),
    ),
    ("export", frozenset({"beacon_otel.export"})),
    (
        "shared",
        frozenset(
            {
                "beacon_otel.__version__",
                "beacon_otel.settings",
                "beacon_otel.config_warnings",
                "beacon_otel.scrubbing",
                "beacon_otel._upstream",
                "beacon_otel.legacy_trace",
            }
        ),
    ),
)


class Import(NamedTuple):
    line: int
    target: str  # a beacon_otel module, or beacon_otel.__version__


def layer_of(module: str) -> int | None:
    """The index of the module's layer in LAYERS (0 is the top), None when it has none."""
    best: tuple[int, int] | None = None  # (length of the matching name, layer)
    for index, (_, names) in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and (best is None or len(name) > best[0]):
                best = (len(name), index)
    return None if best is None else best[1]


def module_name(path: Path, package_root: Path = PACKAGE) -> str:
    parts = path.relative_to(package_root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str, package_root: Path) -> bool:
    relative = Path(*name.split(".")[1:]) if "." in name else Path()
    base = package_root / relative
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _target(imported: str, package_root: Path) -> str:
    """The beacon_otel module an import reaches: ``from beacon_otel.x import y`` reaches module
    ``beacon_otel.x.y`` when there is one, ``beacon_otel.x`` otherwise."""
    if imported == "beacon_otel.__version__":
        return imported
    while imported != "beacon_otel" and not _is_module(imported, package_root):
        imported = imported.rsplit(".", 1)[0]
    return imported


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _import_module_name(node: ast.Call) -> str | None:
    """The module (or its literal prefix) that ``importlib.import_module(...)`` names."""
    function = node.func
    name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", None)
    if name != "import_module" or not node.args:
        return None
    argument = node.args[0]
    if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
        return argument.value
    if isinstance(argument, ast.JoinedStr) and argument.values:
        first = argument.values[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value.rstrip(".")
    return None


def imports_of(source: str, module: str, is_package: bool, package_root: Path = PACKAGE) -> Iterator[Import]:
    """Every import of a beacon_otel module in ``source``, wherever it stands."""
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            origin = _absolute(node, module, is_package)
            names = [f"{origin}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Call):
            called = _import_module_name(node)
            names = [called] if called else []
        for name in names:
            if name == "beacon_otel" or name.startswith("beacon_otel."):
                yield Import(node.lineno, _target(name, package_root))


def upward_imports(
    source: str, module: str, is_package: bool, package_root: Path = PACKAGE
) -> Iterator[tuple[Import, int, int]]:
    """The imports of ``source`` that go up: (import, the module's layer, the target's layer)."""
    own = layer_of(module)
    assert own is not None, f"{module} is in no layer of LAYERS"
    for found in imports_of(source, module, is_package, package_root):
        target = layer_of(found.target)
        assert target is not None, f"{module} imports {found.target}, which is in no layer"
        if target < own:
            yield found, own, target


def modules() -> list[tuple[Path, str]]:
    return [(path, module_name(path)) for path in sorted(PACKAGE.rglob("*.py"))]


def test_every_module_has_a_layer() -> None:
    missing = [name for _, name in modules() if layer_of(name) is None]
    assert not missing, (
        f"place these modules in a layer (tests/test_layering.py, docs/development.md): {missing}"
    )


def test_every_import_goes_down_the_layers() -> None:
    problems = []
    for path, name in modules():
        for found, own, target in upward_imports(path.read_text(), name, path.name == "__init__.py"):
            problems.append(
                f"{path.relative_to(ROOT)}:{found.line}: {name} ({LAYERS[own][0]}) imports "
                f"{found.target} ({LAYERS[target][0]}, a layer above)"
            )
    assert not problems, "imports that go up the layers:\n" + "\n".join(problems)


def test_the_check_sees_imports_in_functions_relative_ones_and_import_module() -> None:
    source = (
        "from beacon_otel.settings import Settings\n"
        "from . import span_encoding\n"
        "def later():\n"
        "    from beacon_otel.instrumentation import http_metrics\n"
        "    from ..sdk import build_telemetry\n"
        "    import beacon_otel.startup\n"
        "    importlib.import_module(f'beacon_otel.tools.{name}')\n"
        "    from beacon_otel import __version__\n"
    )
    found = sorted(
        (i.line, i.target) for i, _, _ in upward_imports(source, "beacon_otel.export.example", False)
    )
    assert found == [
        (4, "beacon_otel.instrumentation.http_metrics"),
        (5, "beacon_otel.sdk"),
        (6, "beacon_otel.startup"),
        (7, "beacon_otel.tools"),
    ]
    assert list(upward_imports(source, "beacon_otel.startup", False)) == []
