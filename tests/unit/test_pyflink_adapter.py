"""jobs/keyed.py reaches into PyFlink's internals (its gateway objects): these fail with a clear
message when a PyFlink upgrade moves them, before any job does."""
from __future__ import annotations

import subprocess

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_pyflink_internals_the_adapter_uses_are_there():
    from pyflink.common.typeinfo import Types
    from pyflink.datastream import DataStream, StreamExecutionEnvironment
    from pyflink.java_gateway import get_gateway
    from pyflink.table import StreamTableEnvironment

    env = StreamExecutionEnvironment.get_execution_environment()
    t_env = StreamTableEnvironment.create(env)
    ds = t_env.to_append_stream(t_env.from_elements([("a", 1)], ["k", "v"]),
                                Types.ROW_NAMED(["k", "v"], [Types.STRING(), Types.LONG()]))
    assert hasattr(ds, "_j_data_stream"), "PyFlink DataStream no longer holds its Java stream as _j_data_stream"
    # jobs/keyed.internal_rows: a table's rows as RowData, with a row type the JVM operators can read
    from jobs.keyed import internal_rows
    rows = internal_rows(t_env, t_env.from_elements([("a", 1)], ["k", "v"]))._j_data_stream.getType()
    data_type = rows.getDataType()  # DataTypeQueryable
    assert data_type.getConversionClass().getName() == "org.apache.flink.table.data.RowData"
    assert [str(f) for f in data_type.getLogicalType().getFieldNames()] == ["k", "v"]
    gateway = get_gateway()
    DataStream(ds._j_data_stream)  # the constructor that wraps a Java stream
    arr = gateway.new_array(gateway.jvm.long, 2)
    arr[1] = 7
    assert list(arr) == [0, 7], "py4j long[] arrays no longer work as jobs/keyed.long_array expects"
    # jobs/keyed.single_key_stream: a Python keyed function on a stream keyed in the JVM, as
    # PyFlink's key_by builds it: (key, row) rows keyed by KeyByKeySelector, wrapped in a KeyedStream
    from pyflink.datastream import KeyedProcessFunction
    from jobs.keyed import single_key_stream

    class Echo(KeyedProcessFunction):
        def process_element(self, value, ctx):
            yield value

    row = Types.ROW_NAMED(["k", "v"], [Types.STRING(), Types.OBJECT_ARRAY(Types.LONG())])
    table = t_env.sql_query("SELECT 'a' AS k, ARRAY[CAST(1 AS BIGINT), 2] AS v")
    keyed = single_key_stream(t_env, table, row)
    paired = keyed._j_data_stream.getType()  # (key, row), as PyFlink's keyed operators take their input
    assert paired.getArity() == 2 and str(paired.getTypeAt(0)) == "Integer" and paired.getTypeAt(1).getArity() == 2
    assert keyed._j_data_stream.getKeyType().getArity() == 1
    keyed.process(Echo(), output_type=row)  # PyFlink builds its keyed operator on it


def test_the_local_jvm_takes_its_heap_and_jit_from_the_config_unless_jvm_args_are_set(monkeypatch):
    """jobs/flink_env.set_local_jvm_options passes flink.local_heap, local_gc and local_jit to the JVM
    PyFlink starts, through the JVM_ARGS that PyFlink's local gateway launcher puts on the java
    command line."""
    import inspect
    import os

    from pyflink import pyflink_gateway_server

    from jobs.flink_env import set_local_jvm_options
    from settings.config import load_config

    launcher = inspect.getsource(pyflink_gateway_server.launch_gateway_server_process)
    assert "JVM_ARGS" in launcher, "PyFlink's local gateway no longer reads JVM_ARGS: flink.local_heap has no effect"
    cfg = load_config(None, {"flink.local_heap": "3g"})
    monkeypatch.delenv("JVM_ARGS", raising=False)
    set_local_jvm_options(cfg, bounded=False)  # auto: the JDK's tiered JIT for a streaming job
    assert os.environ["JVM_ARGS"] == "-Xmx3g -XX:+UseParallelGC"
    monkeypatch.delenv("JVM_ARGS")
    set_local_jvm_options(cfg, bounded=True)  # and lean-c2 for a backfill
    assert os.environ["JVM_ARGS"] == ("-Xmx3g -XX:+UseParallelGC -XX:Tier4InvocationThreshold=15000"
                                      " -XX:Tier4CompileThreshold=45000 -XX:MaxInlineLevel=9 -XX:FreqInlineSize=200")
    # the JDK the jobs run on takes these options (one it no longer knew would stop the JVM)
    java = subprocess.run(["java", *os.environ["JVM_ARGS"].split(), "-version"], capture_output=True, text=True)
    assert java.returncode == 0, java.stderr
    monkeypatch.delenv("JVM_ARGS")
    set_local_jvm_options(load_config(None, {"flink.local_heap": "3g", "flink.local_jit": "tiered"}), bounded=True)
    assert os.environ["JVM_ARGS"] == "-Xmx3g -XX:+UseParallelGC"
    monkeypatch.delenv("JVM_ARGS")
    set_local_jvm_options(load_config(None, {"flink.local_heap": "3g", "flink.local_jit": "c1"}), bounded=False)
    assert os.environ["JVM_ARGS"] == "-Xmx3g -XX:+UseParallelGC -XX:TieredStopAtLevel=1"
    monkeypatch.setenv("JVM_ARGS", "-Xmx9g -Dmine=1")
    set_local_jvm_options(cfg, bounded=True)
    assert os.environ["JVM_ARGS"] == "-Xmx9g -Dmine=1"
