"""The project's Java operators (jobs/jvm), loaded into PyFlink's JVM so that unit tests drive
their feature logic directly, without a Flink job."""
from __future__ import annotations

import functools
import tempfile
from pathlib import Path

from settings.config import load_config
from stack.artifacts import build_udf_jar, job_jars


@functools.cache
def _jvm():
    from pyflink.java_gateway import get_gateway
    from pyflink.util.java_utils import add_jars_to_context_class_loader

    kafka_clients = next(j for j in job_jars(load_config(None, env={}).artifacts_dir) if j.name == "kafka-clients.jar")
    jar = build_udf_jar(Path(tempfile.mkdtemp(prefix="fyp-unit-jar-")), kafka_clients)
    add_jars_to_context_class_loader([kafka_clients.resolve().as_uri(), jar.resolve().as_uri()])
    return get_gateway().jvm


def ops():
    """The JVM package dev.fyp.ops, from a jar built from the current sources."""
    return _jvm().dev.fyp.ops


def udfs():
    """The JVM package dev.fyp.udf (the SQL functions), from the same jar."""
    return _jvm().dev.fyp.udf
