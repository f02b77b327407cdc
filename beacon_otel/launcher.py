"""``beacon-otel-run CMD [ARGS...]``: run any command with the distro active in its Python processes.

The configuration is checked first: if anything is wrong, every problem is printed and the
command is not started (exit status 2). Otherwise the bootstrap folder goes first on
PYTHONPATH and this process *becomes* CMD (exec), so signals, exit status and the process id
are CMD's own, exactly as if it had been started directly.

Exit statuses that are not CMD's: 2, invalid configuration (or no CMD); 127, CMD not found;
126, CMD cannot be executed; 3 (EXIT_WRONG_INTERPRETER), CMD's Python cannot import
beacon-otel, so it would run without telemetry: ``python`` was found outside this virtualenv,
or CMD is a script of another environment. The bootstrap ``sitecustomize`` checks this in the
first Python process of CMD, before the app runs (the launcher names its own interpreter in
BEACON_OTEL_LAUNCHER_PYTHON), and prints that interpreter, this one and the fixes. With
BEACON_OTEL_ALLOW_UNINSTRUMENTED=true (or OTEL_SDK_DISABLED=true) CMD runs anyway, without
telemetry, after a one-line warning (none when the SDK is disabled). Later processes, and
other interpreters the app starts itself, are left alone.
"""

from __future__ import annotations

import os
import sys

from beacon_otel import __version__
from beacon_otel.bootstrap import BOOTSTRAP_DIR, sitecustomize
from beacon_otel.settings import ConfigError, child_environment, load_settings

USAGE = """usage: beacon-otel-run COMMAND [ARGS...]

Run COMMAND with OpenTelemetry traces, metrics and logs set up in every Python process it
starts. Configuration comes from the environment (OTEL_* and BEACON_OTEL_* variables; see the
README). Examples:
  beacon-otel-run uvicorn hybrid_router.main:app --host 0.0.0.0 --port 8080
  beacon-otel-run gunicorn -k uvicorn.workers.UvicornWorker -w 2 hybrid_router.main:app
  beacon-otel-run python -m hybrid_router
"""

EXIT_CONFIG = 2
EXIT_NOT_FOUND = 127
EXIT_NOT_EXECUTABLE = 126
EXIT_WRONG_INTERPRETER = sitecustomize.EXIT_WRONG_INTERPRETER  # the exit of CMD's Python itself


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, file=sys.stdout if args else sys.stderr, end="")
        return 0 if args else EXIT_CONFIG
    if args[0] == "--version":
        print(f"beacon-otel-run {__version__}")
        return 0

    try:
        load_settings()
    except ConfigError as error:
        print(
            "beacon-otel-run: the configuration is invalid, so the command was not started:", file=sys.stderr
        )
        for problem in error.problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_CONFIG

    executable = find_executable(args[0])
    if executable is None:
        print(f"beacon-otel-run: command not found: {args[0]}", file=sys.stderr)
        return EXIT_NOT_FOUND
    sys.stdout.flush()
    sys.stderr.flush()
    environment = child_environment(BOOTSTRAP_DIR)
    if sys.executable:  # the Python with beacon-otel, named if the command's has none
        environment[sitecustomize.LAUNCHER_PYTHON] = sys.executable
    try:
        os.execve(executable, args, environment)
    except OSError as error:
        print(f"beacon-otel-run: cannot run {args[0]}: {error.strerror}", file=sys.stderr)
        return EXIT_NOT_EXECUTABLE
    return 0  # not reached: execve replaced this process


def find_executable(command: str, path: str | None = None) -> str | None:
    """Where ``command`` runs from, as the shell finds it: ``shutil.which``'s rule, written out
    because importing shutil (with re, bz2, lzma) would cost the launcher about 5 ms."""
    if os.sep in command:
        return command if _is_executable(command) else None
    search = os.environ.get("PATH", os.defpath) if path is None else path
    if not search:
        return None  # an empty PATH finds nothing (not even in the current folder)
    for folder in search.split(os.pathsep):
        candidate = os.path.join(folder or os.curdir, command)
        if _is_executable(candidate):
            return candidate
    return None


def _is_executable(path: str) -> bool:
    return os.access(path, os.X_OK) and not os.path.isdir(path)


if __name__ == "__main__":
    raise SystemExit(main())
