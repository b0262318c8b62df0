"""Feature logic over plain data. No Flink import here: the jobs wire these into Flink."""
