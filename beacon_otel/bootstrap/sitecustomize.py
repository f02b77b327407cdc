"""Imported by Python at start-up of each process launched by ``beacon-otel-run``.

It runs in whatever interpreter the command starts, which is not always the one beacon-otel is
installed in: ``python`` may be found on PATH outside the virtualenv, or a script's shebang may
name another environment. There ``import beacon_otel`` fails, and the command would run without
telemetry while exiting 0. So the first Python process of the command that cannot import
beacon-otel says which interpreter it is, which one has beacon-otel, and how to fix it, then
exits with EXIT_WRONG_INTERPRETER before the app runs; unless BEACON_OTEL_ALLOW_UNINSTRUMENTED
(or OTEL_SDK_DISABLED) is true, when the app runs without telemetry, after a one-line warning.

Because that interpreter may be any Python, this file uses only ``os`` and ``sys`` and syntax
that every Python parses (no f-strings, no annotations). Importing it under its package name
(``beacon_otel.bootstrap.sitecustomize``, as the launcher does for the constants) runs nothing.
"""

import os
import sys

EXIT_WRONG_INTERPRETER = 3
# The launcher's interpreter (its sys.executable). Set by the launcher for the command; taken out
# of the environment by the first Python process that reads it, so that its descendants (and any
# other Python the app starts on purpose) never repeat the check or the warning.
LAUNCHER_PYTHON = "BEACON_OTEL_LAUNCHER_PYTHON"
ALLOW_UNINSTRUMENTED = "BEACON_OTEL_ALLOW_UNINSTRUMENTED"
_TRUE = ("true", "1", "yes", "on")  # beacon_otel.settings._parse_bool's true values


def main():
    # type: () -> None
    launcher_python = os.environ.pop(LAUNCHER_PYTHON, None)
    try:
        from beacon_otel.bootstrap import boot
    except ImportError as error:
        if launcher_python is not None:
            uninstrumented(launcher_python, error)  # exits, unless running without telemetry is allowed
    else:
        boot()
    chain_shadowed_sitecustomize()


_WRONG_INTERPRETER = """\
beacon-otel-run: the command was not started, because it would have run without telemetry:
  its Python, {python} (Python {version}), cannot import beacon-otel ({error}),
  which is installed for {launcher}, the Python of beacon-otel-run itself.
  Probably `python`, or the command's script, was found on PATH outside that environment.
Fix it in one of these ways:
  - run the command with beacon-otel's Python: put {bin_dir} first on PATH
    (activate that virtualenv), or name the interpreter: beacon-otel-run {launcher} ...
  - install beacon-otel into the command's Python: {python} -m pip install beacon-otel
  - run the command without telemetry anyway: set {allow}=true
"""
_RUNS_UNINSTRUMENTED = (
    "beacon-otel-run: warning: the command runs WITHOUT telemetry ({allow}=true): its Python, {python}, "
    "cannot import beacon-otel ({error}); beacon-otel is installed for {launcher}\n"
)


def uninstrumented(launcher_python, error):
    # type: (str, ImportError) -> None
    """This interpreter cannot import beacon-otel: stop before the app runs, or warn and go on."""
    if _is_true(os.environ.get("OTEL_SDK_DISABLED")):
        return  # telemetry is off anyway: nothing is lost
    values = {
        "python": sys.executable or "(unknown)",
        "version": ".".join(str(part) for part in sys.version_info[:3]),
        "error": str(error),
        "launcher": launcher_python,
        "bin_dir": os.path.dirname(launcher_python),
        "allow": ALLOW_UNINSTRUMENTED,
    }
    if _is_true(os.environ.get(ALLOW_UNINSTRUMENTED)):
        _write(_RUNS_UNINSTRUMENTED.format(**values))
        return
    _write(_WRONG_INTERPRETER.format(**values))
    os._exit(EXIT_WRONG_INTERPRETER)


def _is_true(value):
    # type: (str | None) -> bool
    return value is not None and value.strip().lower() in _TRUE


def _write(text):
    # type: (str) -> None
    stream = sys.stderr
    if stream is None:
        return
    try:
        stream.write(text)
        stream.flush()
    except Exception:  # a closed or broken stderr must not change what happens next
        pass


def chain_shadowed_sitecustomize():
    # type: () -> None
    """Ours hides any other ``sitecustomize`` on sys.path (Debian's, a virtualenv's, the app's):
    load that one as Python would have, in an instrumented process or not."""
    try:
        import importlib.util  # here, not at the top: the launcher imports this module
    except ImportError:  # a Python too old to have it
        return
    own_dir = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        if not entry or os.path.abspath(entry) == own_dir:
            continue
        candidate = os.path.join(entry, "sitecustomize.py")
        if os.path.isfile(candidate):
            spec = importlib.util.spec_from_file_location("_beacon_otel_shadowed_sitecustomize", candidate)
            if spec and spec.loader:
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            return


if __name__ == "sitecustomize":  # imported by Python at start-up, not under its package name
    main()
