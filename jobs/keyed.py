"""Keying a table's rows in the JVM for a Python keyed function (one crossing per row)."""
from __future__ import annotations

from pyflink.table.expressions import col, row


def _type_info(data_type):
    from pyflink.common.typeinfo import Types

    name = str(data_type).upper()
    for prefix, info in (("BIGINT", Types.LONG), ("DOUBLE", Types.DOUBLE), ("VARCHAR", Types.STRING),
                         ("CHAR", Types.STRING), ("STRING", Types.STRING)):
        if name.startswith(prefix):
            return info()
    raise TypeError(f"no DataStream type for {data_type}")


def keyed_by_first_field(t_env, table):
    """A PyFlink KeyedStream keyed by the table's first (STRING) column, partitioned in the JVM.

    PyFlink's key_by runs the key selector in a Python operator of its own: one more JVM <-> Python
    crossing per row. This builds the same (key, row) records in SQL instead and keys them with
    the Java KeyByKeySelector that key_by itself uses, so rows cross into Python once."""
    from pyflink.common.typeinfo import Types
    from pyflink.datastream.data_stream import KeyedStream
    from pyflink.java_gateway import get_gateway

    schema = table.get_schema()
    cols = schema.get_field_names()
    value_type = Types.ROW_NAMED(cols, [_type_info(t) for t in schema.get_field_data_types()])
    pairs = table.select(col(cols[0]).alias("k"), row(*[col(c) for c in cols]).alias("v"))
    ds = t_env.to_append_stream(pairs, Types.ROW_NAMED(["k", "v"], [Types.STRING(), value_type]))
    gateway = get_gateway()
    j_keyed = ds._j_data_stream.keyBy(gateway.jvm.KeyByKeySelector(), Types.ROW([Types.STRING()]).get_java_type_info())
    return KeyedStream(j_keyed, value_type, ds)
