"""Demo "hybrid router" app used to exercise beacon-otel.

It imitates Project Beacon's FastAPI hybrid router (Golem + Modal GPU
providers) but deliberately knows nothing about telemetry: no module in this
package imports a telemetry library or the distribution, so any spans,
metrics or log correlation observed while it runs come from the distro alone.
"""
