#!/usr/bin/env sh
# Run the demo router under beacon-otel-run, with three fake GPU providers, in the foreground
# (Ctrl-C stops both); try it from another terminal.
# Each signal goes where the usual variables say. A signal with no exporter chosen
# (OTEL_TRACES_EXPORTER, ...) and no endpoint (OTEL_EXPORTER_OTLP_ENDPOINT or its per-signal
# OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, ...) is printed instead: spans on the console, metrics and
# logs not at all (the JSON log lines are on stdout anyway).
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
# exporter_for EXPORTER_VARIABLE ENDPOINT_VARIABLE FALLBACK: keep an explicit exporter; else otlp
# (the default) when the signal has an endpoint, generic or its own; else FALLBACK.
exporter_for() {
  eval "chosen=\${$1:-} endpoint=\${OTEL_EXPORTER_OTLP_ENDPOINT:-}\${$2:-}"
  if [ -z "$chosen" ] && [ -z "$endpoint" ]; then
    export "$1=$3"
  fi
}
exporter_for OTEL_TRACES_EXPORTER OTEL_EXPORTER_OTLP_TRACES_ENDPOINT console
exporter_for OTEL_METRICS_EXPORTER OTEL_EXPORTER_OTLP_METRICS_ENDPOINT none
exporter_for OTEL_LOGS_EXPORTER OTEL_EXPORTER_OTLP_LOGS_ENDPOINT none
python -m demo_router.fake_providers --port "$fakes_port" &
fakes=$!
trap 'kill $fakes 2>/dev/null' EXIT INT TERM
exec_port=${DEMO_PORT:-8080}
echo "demo router on http://127.0.0.1:$exec_port (try /providers, /fanout, POST /inference); fake providers on :$fakes_port"
echo "traces: ${OTEL_TRACES_EXPORTER:-otlp}, metrics: ${OTEL_METRICS_EXPORTER:-otlp}, logs: ${OTEL_LOGS_EXPORTER:-otlp} (Ctrl-C stops the demo)"
beacon-otel-run uvicorn demo_router.app:app --host 127.0.0.1 --port "$exec_port"
