"""beacon-otel: the OpenTelemetry distribution for Project Beacon's hybrid router."""

__version__ = "0.1.0"
