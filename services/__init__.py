"""Services beside the Flink jobs that consume their topics (feature writer, notifier, alerter
read through one loop: partition_reader.py)."""
