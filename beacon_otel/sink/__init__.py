"""``beacon-otel sink``: an OTLP/HTTP trace receiver that writes the ``trace_spans`` table."""
