"""The service. Importing any part of it first keeps OpenTelemetry unloaded while tracing
is off (app/tracing/__init__.py says why)."""

from app.tracing import keep_opentelemetry_unloaded

keep_opentelemetry_unloaded()
