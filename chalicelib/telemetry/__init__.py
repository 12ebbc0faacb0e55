"""Telemetry: structured logs, embedded metrics and tracing, set up once per process."""
