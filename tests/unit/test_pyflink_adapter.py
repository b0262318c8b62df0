"""jobs/keyed.py reaches into PyFlink's internals (its gateway objects): these fail with a clear
message when a PyFlink upgrade moves them, before any job does."""
from __future__ import annotations

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
    gateway = get_gateway()
    DataStream(ds._j_data_stream)  # the constructor that wraps a Java stream
    arr = gateway.new_array(gateway.jvm.long, 2)
    arr[1] = 7
    assert list(arr) == [0, 7], "py4j long[] arrays no longer work as jobs/keyed.long_array expects"
