"""The Redis online feature store: key layout and encoding (layout.py, SPEC.md), writer, reader."""
