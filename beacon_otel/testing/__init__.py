"""Test and benchmark helpers for beacon_otel (loopback OTLP receiver, etc.)."""
