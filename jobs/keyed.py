"""The job's one adapter over PyFlink internals (its gateway objects), for what PyFlink's public API
cannot say: running a Java keyed function of jobs/jvm on a table's rows (no Python crossing), a
table's rows handed to the JVM in Flink's internal format, and calling the project's Java code
from the driver.
tests/unit/test_pyflink_adapter.py fails with a clear message if these internals move."""
from __future__ import annotations

NO_END = -(2**63)  # the JVM operators' end-of-input as-of time when there is none


def _type_info(data_type):
    from pyflink.common.typeinfo import Types

    name = str(data_type).upper()
    for prefix, info in (("BIGINT", Types.LONG), ("DOUBLE", Types.DOUBLE), ("VARCHAR", Types.STRING),
                         ("CHAR", Types.STRING), ("STRING", Types.STRING)):
        if name.startswith(prefix):
            return info()
    raise TypeError(f"no DataStream type for {data_type}")


def jvm_keyed_process(t_env, table, function, output_type, uid: str, name: str):
    """Rows of `table`, keyed in the JVM by their first (STRING) column, through `function` (a
    Java KeyedProcessFunction<String, Row, Row> built with `jvm()`): a DataStream of its output
    rows (of the PyFlink row type `output_type`). Nothing of it runs in Python."""
    from pyflink.common.typeinfo import Types

    schema = table.get_schema()
    in_type = Types.ROW_NAMED(schema.get_field_names(), [_type_info(t) for t in schema.get_field_data_types()])
    j_in = t_env.to_append_stream(table, in_type)._j_data_stream
    out_type = output_type.get_java_type_info()
    j_out = (j_in.keyBy(jvm().dev.fyp.ops.FirstFieldKey(), Types.STRING().get_java_type_info())
             .process(function, out_type).uid(uid).name(name))
    from pyflink.datastream import DataStream

    return DataStream(j_out)


def single_key_stream(t_env, table, row_type):
    """The rows of `table` (of the PyFlink row type `row_type`) as a KeyedStream on one key, in
    the order of a one-task upstream, ready for a Python KeyedProcessFunction. PyFlink's key_by
    would put a Python operator before it (its key selector, and a map to declare a type with
    arrays): a second Python worker and one more round trip per record. Here the rows are paired
    with the key in SQL and keyed in the JVM, in the form PyFlink's own key_by hands on: (key, row),
    keyed by its first field."""
    from pyflink.common.typeinfo import Types
    from pyflink.datastream.data_stream import KeyedStream
    from pyflink.java_gateway import get_gateway

    names = table.get_schema().get_field_names()
    paired = t_env.sql_query(f"SELECT 0, ROW({', '.join(f'`{n}`' for n in names)}) FROM {table}")
    # one task, like the window before it, so the rows keep their order
    stream = t_env.to_append_stream(paired, Types.ROW([Types.INT(), row_type]))
    stream._j_data_stream.getTransformation().setParallelism(1)
    j_keyed = stream._j_data_stream.keyBy(get_gateway().jvm.KeyByKeySelector(),
                                          Types.ROW([Types.INT()]).get_java_type_info())
    return KeyedStream(j_keyed, row_type, stream)


def update_batches(updates, max_bytes: int, max_delay_ms: int, partitions: int, uid: str):
    """A DataStream of feature updates (entity_id, payload) packed by jobs/jvm UpdateBatches into
    rows (entity_id: the batch key, payload: a JSON array of updates as UTF-8 bytes) of at most
    about `max_bytes`; subtask i's key lands on partition i mod `partitions` of the topic."""
    from pyflink.datastream import DataStream

    return DataStream(jvm().dev.fyp.ops.UpdateBatches.of(updates._j_data_stream, max_bytes, max_delay_ms,
                                                         partitions, uid))


def internal_rows(t_env, table):
    """`table` as a DataStream of Flink's internal rows (RowData): the planner's own records, passed
    on as they are, their row type readable in the JVM (a DataTypeQueryable type). Through
    to_data_stream each record would be converted to a Row (every string decoded) and back
    (encoded again)."""
    from pyflink.datastream import DataStream

    j_table = table._j_table
    row_data = jvm().java.lang.Class.forName("org.apache.flink.table.data.RowData")
    j_type = j_table.getResolvedSchema().toPhysicalRowDataType().bridgedTo(row_data)
    return DataStream(t_env._j_tenv.toDataStream(j_table, j_type))


def jvm():
    """The JVM's package tree (py4j), to build Java functions from the job's jar."""
    from pyflink.java_gateway import get_gateway

    return get_gateway().jvm


def jvm_with_jars(jars):
    """The JVM's package tree with `jars` (the job's jars, in the order `pipeline.jars` lists them:
    the job's environment then finds them loaded and adds no second class loader) on the driver's
    class path: to call the project's Java code from the driver before the job is built."""
    from pyflink.util.java_utils import add_jars_to_context_class_loader

    add_jars_to_context_class_loader([j.resolve().as_uri() for j in jars])
    return jvm()


def long_array(values):
    """A Java long[] of `values`."""
    return _primitive_array("long", values)


def int_array(values):
    """A Java int[] of `values`."""
    return _primitive_array("int", values)


def _primitive_array(kind: str, values):
    from pyflink.java_gateway import get_gateway

    gateway = get_gateway()
    arr = gateway.new_array(getattr(gateway.jvm, kind), len(values))
    for i, v in enumerate(values):
        arr[i] = int(v)
    return arr
