"""Imported by Python at start-up of each process launched by ``beacon-otel-run``."""

from beacon_otel.bootstrap import boot

boot()
