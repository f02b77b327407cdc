"""The local stack: the real OpenTelemetry Collector and Jaeger, built from their Go modules, with
the sink and Postgres, run without Docker (``beacon-otel stack build`` / ``beacon-otel stack up``)."""
