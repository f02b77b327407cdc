"""Black-box tests: ``beacon-otel-run`` given a Python that cannot import beacon-otel.

``python`` found outside the virtualenv (or a script of another environment) used to start the
app without telemetry, with only "Error in sitecustomize" on stderr and exit status 0. Now the
command's first Python process names both interpreters and the fixes, and exits with
EXIT_WRONG_INTERPRETER before the app runs, unless BEACON_OTEL_ALLOW_UNINSTRUMENTED=true.
Every test runs real processes; the other interpreter is a throwaway virtualenv without pip.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from beacon_otel import launcher
from beacon_otel.bootstrap import BOOTSTRAP_DIR, sitecustomize
from tests.support.processes import BIN, clean_env

LAUNCHER = str(BIN / "beacon-otel-run")
NO_EXPORT = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}
APP = "print('app ran')"
SYSTEM_PYTHON = "/usr/bin/python3"


def _launcher_python() -> str:
    """The interpreter the launcher runs in (its sys.executable): the console script's shebang."""
    return Path(LAUNCHER).read_text().splitlines()[0].removeprefix("#!").strip()


def _lacks_beacon_otel(python: str) -> bool:
    result = subprocess.run(
        [python, "-c", "import beacon_otel"], env={"PATH": "/usr/bin:/bin"}, capture_output=True, cwd="/"
    )
    return result.returncode != 0


@pytest.fixture(scope="module")
def foreign_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A virtualenv of its own, without beacon-otel (nor pip): the wrong interpreter."""
    folder = tmp_path_factory.mktemp("foreign") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
    python = str(folder / "bin" / "python")
    assert _lacks_beacon_otel(python)
    return python


def _run(command: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LAUNCHER, *command],
        env=clean_env(**NO_EXPORT, **extra),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def _assert_stopped(result: subprocess.CompletedProcess[str], python: str) -> None:
    assert result.returncode == launcher.EXIT_WRONG_INTERPRETER == 3, result.stderr
    assert "app ran" not in result.stdout, "the app must not run without telemetry"
    stderr = result.stderr
    assert "the command was not started, because it would have run without telemetry" in stderr
    assert f"its Python, {python} (Python " in stderr
    assert "No module named 'beacon_otel" in stderr
    venv_python = _launcher_python()
    assert f"installed for {venv_python}, the Python of beacon-otel-run itself" in stderr
    assert f"put {os.path.dirname(venv_python)} first on PATH" in stderr
    assert f"beacon-otel-run {venv_python} ..." in stderr
    assert f"{python} -m pip install beacon-otel" in stderr
    assert "BEACON_OTEL_ALLOW_UNINSTRUMENTED=true" in stderr
    assert "Error in sitecustomize" not in stderr and "Traceback" not in stderr
    assert stderr.count("the command was not started") == 1


def test_another_virtualenvs_python_is_stopped_before_the_app(foreign_python: str, tmp_path: Path) -> None:
    result = _run([foreign_python, "-c", APP], tmp_path)
    _assert_stopped(result, foreign_python)


@pytest.mark.skipif(
    not os.path.exists(SYSTEM_PYTHON) or not _lacks_beacon_otel(SYSTEM_PYTHON),
    reason="needs a system Python without beacon-otel",
)
def test_the_system_python_is_stopped_before_the_app(tmp_path: Path) -> None:
    result = _run([SYSTEM_PYTHON, "-c", APP], tmp_path)
    _assert_stopped(result, SYSTEM_PYTHON)


def test_python_found_on_path_outside_the_virtualenv(foreign_python: str) -> None:
    """The case of the issue: the venv's bin is not on PATH, so ``python`` is another one. Run
    from the project folder, where ``beacon_otel`` is importable as a folder once the app runs."""
    result = subprocess.run(
        [LAUNCHER, "python", "-c", APP],
        env={**clean_env(**NO_EXPORT), "PATH": f"{os.path.dirname(foreign_python)}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(BOOTSTRAP_DIR).parents[1],
    )
    _assert_stopped(result, foreign_python)


def test_a_script_of_another_environment_is_stopped(foreign_python: str, tmp_path: Path) -> None:
    """Commands such as ``uvicorn`` are scripts: their shebang, not PATH, picks the Python."""
    script = tmp_path / "other-tool"
    script.write_text(f"#!{foreign_python}\n{APP}\n")
    script.chmod(0o755)
    result = _run([str(script)], tmp_path)
    _assert_stopped(result, foreign_python)


def test_allowed_uninstrumented_runs_with_one_warning(foreign_python: str, tmp_path: Path) -> None:
    """The app runs, and the Python processes it starts do not repeat the warning."""
    app = (
        "import subprocess, sys\n"
        "print('app ran', flush=True)\n"
        "subprocess.run([sys.executable, '-c', \"print('child ran')\"], check=True)\n"
    )
    result = _run([foreign_python, "-c", app], tmp_path, BEACON_OTEL_ALLOW_UNINSTRUMENTED="true")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["app ran", "child ran"]
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("beacon-otel-run: warning: the command runs WITHOUT telemetry")
    assert "BEACON_OTEL_ALLOW_UNINSTRUMENTED=true" in lines[0]
    assert foreign_python in lines[0] and _launcher_python() in lines[0]


def test_sdk_disabled_runs_the_other_python_quietly(foreign_python: str, tmp_path: Path) -> None:
    """OTEL_SDK_DISABLED=true asks for no telemetry: nothing is lost, nothing to say."""
    result = _run([foreign_python, "-c", APP], tmp_path, OTEL_SDK_DISABLED="true")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "app ran\n"
    assert result.stderr == ""


def test_an_invalid_allow_value_is_a_configuration_error(foreign_python: str, tmp_path: Path) -> None:
    result = _run([foreign_python, "-c", APP], tmp_path, BEACON_OTEL_ALLOW_UNINSTRUMENTED="maybe")
    assert result.returncode == launcher.EXIT_CONFIG
    assert "BEACON_OTEL_ALLOW_UNINSTRUMENTED='maybe' is invalid" in result.stderr
    assert "app ran" not in result.stdout


def test_the_virtualenvs_python_runs_as_before(tmp_path: Path) -> None:
    """The normal case: instrumented, no warning, and the launcher's variable does not leak."""
    app = (
        "import os\n"
        "from opentelemetry import trace\n"
        "print('app ran', type(trace.get_tracer_provider()).__module__, "
        f"{sitecustomize.LAUNCHER_PYTHON!r} in os.environ)\n"
    )
    result = _run(["python", "-c", app], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "app ran opentelemetry.sdk.trace False\n"
    assert "beacon-otel-run" not in result.stderr and "sitecustomize" not in result.stderr


def test_other_pythons_the_app_starts_are_left_alone(foreign_python: str, tmp_path: Path) -> None:
    """An instrumented app may run tools of another Python: they run as before, and silently."""
    app = (
        "import subprocess\n"
        f"subprocess.run([{foreign_python!r}, '-c', \"print('tool ran')\"], check=True)\n"
        "print('app ran')\n"
    )
    result = _run(["python", "-c", app], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "tool ran\napp ran\n"
    assert result.stderr == ""


@pytest.mark.parametrize("interpreter", ["virtualenv", "foreign-allowed"])
def test_the_shadowed_sitecustomize_still_runs(interpreter: str, foreign_python: str, tmp_path: Path) -> None:
    """Ours hides any other sitecustomize on sys.path; that one still runs, in the app's process."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "sitecustomize.py").write_text("import sys\nsys.shadowed_sitecustomize_ran = True\n")
    python = "python" if interpreter == "virtualenv" else foreign_python
    app = "import sys\nprint('app ran', getattr(sys, 'shadowed_sitecustomize_ran', False))\n"
    result = _run(
        [python, "-c", app], tmp_path, PYTHONPATH=str(other), BEACON_OTEL_ALLOW_UNINSTRUMENTED="true"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "app ran True\n"
    assert ("WITHOUT telemetry" in result.stderr) is (interpreter == "foreign-allowed")


def test_the_bootstrap_parses_in_any_python() -> None:
    """The bootstrap runs in whatever Python the command starts, old ones included: no
    f-strings, no annotations; and importing it by its package name runs nothing."""
    source = Path(sitecustomize.__file__).read_text()
    tree = ast.parse(source, feature_version=(3, 4))
    for node in ast.walk(tree):
        assert not isinstance(node, ast.JoinedStr | ast.AnnAssign), ast.dump(node)
        if isinstance(node, ast.FunctionDef):
            assert node.returns is None and all(a.annotation is None for a in node.args.args), node.name
    assert "from __future__" not in source


def test_the_exit_status_is_documented() -> None:
    assert launcher.EXIT_WRONG_INTERPRETER == sitecustomize.EXIT_WRONG_INTERPRETER == 3
    assert launcher.EXIT_WRONG_INTERPRETER not in (
        launcher.EXIT_CONFIG,
        launcher.EXIT_NOT_FOUND,
        launcher.EXIT_NOT_EXECUTABLE,
    )
    assert launcher.__doc__ and "3 (EXIT_WRONG_INTERPRETER)" in launcher.__doc__
    assert "BEACON_OTEL_ALLOW_UNINSTRUMENTED" in launcher.__doc__
