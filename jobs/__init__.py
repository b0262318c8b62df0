"""Flink job entry points: thin wiring of sources, operators and sinks."""
