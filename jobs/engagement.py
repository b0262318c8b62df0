"""The engagement job: engagement events -> per-video 1h/6h/24h features -> feature-updates topic.

Graph (one Flink job):
  raw events (Kafka, or a JSON-lines file for a backfill) with an event-time watermark
    -> parse + validate once per event in the JVM (jobs/jvm), route each event
       invalid -> dead-letter topic     late (beyond allowed lateness) -> late topic
       tile -> per-video sums per emit step (TUMBLE, JVM)  |  correction -> as is
    -> Python, keyed by video: sliding sums over tiles (operators/sliding_tiles.py)
    -> feature-updates topic (key = video id) -> writer service -> Redis
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pyflink.table import DataTypes, Schema
from pyflink.table.expressions import col, row

from fyp.config import Config
from jobs import sql
from jobs.engagement_window_fn import OUTPUT_TYPE, SlidingEngagementFunction
from jobs.flink_env import create_environments
from operators.engagement import METRICS, Weights, contribution_sql

JOB_NAME = "engagement"
UID = "engagement-sliding-windows"


@dataclass
class JobHandle:
    env: object
    t_env: object
    name: str
    client: object = None


def _contribution_columns(cfg: Config, aggregate: bool) -> str:
    exprs = contribution_sql(Weights(**vars(cfg.engagement.score_weights)))
    if aggregate:
        return ", ".join(f"SUM({exprs[m]}) AS m_{m}" for m in METRICS)
    return ", ".join(f"{exprs[m]} AS m_{m}" for m in METRICS)


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


def build(cfg: Config, *, input_file: str | None = None, restore_from: Path | None = None,
          end_of_input_as_of: int | None = None) -> JobHandle:
    """Wires the job. Streaming from Kafka unless `input_file` is given (bounded backfill)."""
    bounded = input_file is not None
    name = JOB_NAME if not bounded else JOB_NAME + "-backfill"
    env, t_env = create_environments(cfg, name, streaming_checkpoints=not bounded, restore_from=restore_from)
    sql.register_functions(t_env)
    topics = cfg.kafka.topics
    if bounded:
        t_env.execute_sql(sql.file_source_ddl(cfg, "engagement_raw", str(Path(input_file).resolve())))
        origin = f"file:{Path(input_file).name}"
    else:
        t_env.execute_sql(sql.kafka_source_ddl(cfg, "engagement_raw", topics.engagement, cfg.kafka.consumer_group))
        origin = topics.engagement
    t_env.execute_sql(sql.routed_view_sql(cfg, "engagement_routed", "engagement_raw", has_offsets=not bounded))
    # Read, parse and route once. Without this step the statement set (side outputs) and the
    # DataStream part are planned apart: the topic is read by two sources and each decides
    # "late" against its own watermark, so an event could be neither counted nor sent to late.
    routed = t_env.from_data_stream(
        t_env.to_data_stream(t_env.from_path("engagement_routed")),
        Schema.new_builder().column_by_metadata("event_rowtime", DataTypes.TIMESTAMP_LTZ(3), "rowtime")
        .watermark("event_rowtime", "SOURCE_WATERMARK()").build())
    t_env.create_temporary_view("engagement_events", routed)
    t_env.execute_sql(sql.side_output_sink_ddl(cfg, "dead_letter_sink", topics.dead_letter))
    t_env.execute_sql(sql.side_output_sink_ddl(cfg, "late_sink", topics.late))
    t_env.execute_sql(sql.keyed_update_sink_ddl(cfg, "feature_update_sink", topics.feature_updates))

    step = cfg.engagement.emit_interval
    contributions = t_env.sql_query(f"""
SELECT video_id, MIN(event_time - MOD(event_time, {step})) AS tile_start, 'T' AS kind,
       {_contribution_columns(cfg, aggregate=True)}
FROM TABLE(TUMBLE(TABLE engagement_events, DESCRIPTOR(event_rowtime), {sql.interval(step)}))
WHERE route = 'tile'
GROUP BY video_id, window_start, window_end
UNION ALL
SELECT video_id, event_time - MOD(event_time, {step}) AS tile_start, 'C' AS kind,
       {_contribution_columns(cfg, aggregate=False)}
FROM engagement_events WHERE route = 'correction'""")

    e = cfg.engagement
    updates = (keyed_by_first_field(t_env, contributions)
               .process(SlidingEngagementFunction(e.tile, e.emit_interval, e.window_ms, end_of_input_as_of),
                        output_type=OUTPUT_TYPE)
               .uid(UID).name("sliding 1h/6h/24h per video"))
    t_env.create_temporary_view("feature_updates", t_env.from_data_stream(updates))

    stmts = t_env.create_statement_set()
    stmts.add_insert_sql(sql.dead_letter_insert("dead_letter_sink", "engagement_events", origin))
    stmts.add_insert_sql(sql.late_insert("late_sink", "engagement_events", origin))
    stmts.add_insert_sql("INSERT INTO feature_update_sink SELECT entity_id, payload FROM feature_updates")
    stmts.attach_as_datastream()
    return JobHandle(env, t_env, name)


def start(handle: JobHandle) -> JobHandle:
    handle.client = handle.env.execute_async(handle.name)
    return handle
