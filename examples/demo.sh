#!/usr/bin/env sh
# Run the demo router under beacon-otel-run, with three fake GPU providers.
# Without OTEL_EXPORTER_OTLP_ENDPOINT, spans are printed to the console; with it, everything
# goes over OTLP (e.g. OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 for a local Collector).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv_bin=$(cd "$here/../.venv/bin" 2>/dev/null && pwd || true)
[ -n "$venv_bin" ] && PATH="$venv_bin:$PATH"
export PATH PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
fakes_port=${DEMO_FAKES_PORT:-9001}
: "${DEMO_PROVIDERS:=golem-us|golem|us-east|http://127.0.0.1:$fakes_port/p/golem-us,modal-eu|modal|eu-west|http://127.0.0.1:$fakes_port/p/modal-eu,modal-ap|modal|asia-pacific|http://127.0.0.1:$fakes_port/p/modal-ap}"
export DEMO_PROVIDERS
# The demo router's layout is not hybrid_router.core.router: name its module for the provider hooks.
export BEACON_OTEL_PROVIDER_HOOKS="${BEACON_OTEL_PROVIDER_HOOKS:-demo_router.router}"
if [ -z "${OTEL_EXPORTER_OTLP_ENDPOINT:-}" ]; then
  export OTEL_TRACES_EXPORTER="${OTEL_TRACES_EXPORTER:-console}"
  export OTEL_METRICS_EXPORTER="${OTEL_METRICS_EXPORTER:-none}" OTEL_LOGS_EXPORTER="${OTEL_LOGS_EXPORTER:-none}"
fi
python -m demo_router.fake_providers --port "$fakes_port" &
fakes=$!
trap 'kill $fakes 2>/dev/null' EXIT INT TERM
exec_port=${DEMO_PORT:-8080}
echo "demo router on http://127.0.0.1:$exec_port (try /providers, /fanout, POST /inference); fake providers on :$fakes_port"
beacon-otel-run uvicorn demo_router.app:app --host 127.0.0.1 --port "$exec_port"
