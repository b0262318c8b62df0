"""The shared front of every job: the engagement stream read, parsed, validated and routed once
(invalid events to the dead-letter topic, tagged with the job), and the video metadata from
upload-events as a versioned table for joins as of each view's event time."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pyflink.common.typeinfo import Types
from pyflink.table import DataTypes, Schema

from featurestore.updates import RECORD_CHARS
from settings.config import Config
from jobs import source_partitions, sql
from jobs.flink_env import create_environments
from jobs.keyed import int_array, internal_rows, jvm, update_batches

ENGAGEMENT_VIEW = "engagement_events"
ENRICHED_VIEW = "engagement_enriched"
METADATA_JOIN_UID = "views-as-of-upload"  # typed JVM state: waiting views, upload versions
# operator state of jobs/jvm WatermarkFloor: the watermark each subtask had sent on
ENGAGEMENT_FLOOR_UID = "engagement-watermark-floor"
ENRICHED_FLOOR_UID = "enriched-watermark-floor"
# what every family's wire() returns: (entity id, update message of featurestore/updates.py)
UPDATE_TYPE = Types.ROW_NAMED(["entity_id", "payload"], [Types.STRING(), Types.STRING()])


@dataclass
class JobHandle:
    env: object
    t_env: object
    name: str
    stmts: object  # the statement set every sink of the job joins
    partitions: int = 1  # of the topics the job writes (the update batches' keys spread over them)
    client: object = None


def new_job(cfg: Config, job: str, input_file: str | None, restore_from=None) -> JobHandle:
    """Environments for one job: streaming with checkpoints, or a bounded backfill over a file."""
    bounded = input_file is not None
    name = job if not bounded else job + "-backfill"
    env, t_env = create_environments(cfg, name, streaming_checkpoints=not bounded, restore_from=restore_from)
    return JobHandle(env, t_env, name, t_env.create_statement_set(), cfg.kafka.partitions)


# A batch of updates (jobs/jvm UpdateBatches) holds none back longer than UPDATE_BATCH_DELAY_MS
# (most leave at once: with the watermark that made them).
UPDATE_BATCH_DELAY_MS = 10
UPDATE_BATCHES_UID = "feature-update-batches"


def finish(handle: JobHandle, updates=None) -> JobHandle:
    """Sends a keyed-updates DataStream (entity_id, payload) to the feature-updates topic, in
    batches of many updates per record, and attaches every statement of the job to its DataStream
    graph."""
    if updates is not None:
        updates = update_batches(updates, RECORD_CHARS, UPDATE_BATCH_DELAY_MS, handle.partitions, UPDATE_BATCHES_UID)
        handle.t_env.create_temporary_view("feature_updates", handle.t_env.from_data_stream(updates))
        handle.stmts.add_insert_sql("INSERT INTO feature_update_sink SELECT entity_id, payload FROM feature_updates")
    handle.stmts.attach_as_datastream()
    return handle


def feature_update_sink(cfg: Config, t_env) -> None:
    t_env.execute_sql(sql.keyed_update_sink_ddl(cfg, "feature_update_sink", cfg.kafka.topics.feature_updates))


def late_events(cfg: Config, t_env, stmts, origin: str, job: str) -> None:
    """Events beyond the allowed lateness -> the late topic, with the job in a header."""
    t_env.execute_sql(sql.side_output_sink_ddl(cfg, "late_sink", cfg.kafka.topics.late))
    stmts.add_insert_sql(sql.late_insert("late_sink", ENGAGEMENT_VIEW, origin, job))


@dataclass(frozen=True)
class Needs:
    """What of the shared front a family reads: `late` (it routes late events to the late topic),
    `metadata` (it joins views with upload metadata), `updates` (it writes feature updates)."""
    late: bool = False
    metadata: bool = False
    updates: bool = True


def prepare(cfg: Config, job: JobHandle, label: str, needs: list[Needs], input_file: str | None = None,
            uploads_file: str | None = None) -> None:
    """Registers, once, the parts of the front that any of `needs` reads; dead letters and late
    events are tagged with `label` (the job). Streaming: refuses topics with fewer partitions than
    the job's parallelism (jobs/source_partitions.py)."""
    topics = [] if input_file is not None else [cfg.kafka.topics.engagement]
    if any(n.metadata for n in needs) and uploads_file is None:
        topics.append(cfg.kafka.topics.uploads)
    if topics:
        source_partitions.check(cfg, topics)
    origin = engagement_stream(cfg, job.t_env, job.stmts, label, input_file)
    if any(n.late for n in needs):
        late_events(cfg, job.t_env, job.stmts, origin, label)
    if any(n.metadata for n in needs):
        video_metadata(cfg, job.t_env, job.stmts, label, uploads_file)
    if any(n.updates for n in needs):
        feature_update_sink(cfg, job.t_env)


def single_stream(t_env, table, rowtime: str = "event_rowtime"):
    """`table` as one node of the job, whatever number of queries read it. The planner copies a view
    into every query that reads it, its source included: each copy reads and parses the input
    again, and a view whose rows depend on the watermark (a CURRENT_WATERMARK test) would be
    computed by each copy against its own watermark timeline and could disagree with itself.
    Through a DataStream, every reader shares one computation. The
    result has the columns of `table` (its time attribute as a plain timestamp) and `rowtime`, the
    records' time attribute, with the upstream watermark."""
    return _with_rowtime(t_env, internal_rows(t_env, table), rowtime)


def _with_rowtime(t_env, rows, rowtime: str):
    """A DataStream of internal rows back as a table: its columns, and `rowtime`, the records'
    time attribute (their stream timestamps), with the stream's watermark."""
    return t_env.from_data_stream(
        rows, Schema.new_builder().column_by_metadata(rowtime, DataTypes.TIMESTAMP_LTZ(3), "rowtime")
        .watermark(rowtime, "SOURCE_WATERMARK()").build())


def watermark_floor(t_env, table, uid: str, name: str, rowtime: str = "rowtime"):
    """`table` (with one time attribute) through jobs/jvm WatermarkFloor: after a restore from a
    checkpoint its watermark starts where it was, not from nothing, so a decision made on it (a
    route, a closed interval) agrees with the windows downstream, which restore theirs. The result
    has the columns of `table` (its time attribute as a plain timestamp) and `rowtime`, the records'
    time attribute."""
    from pyflink.datastream import DataStream

    floored = DataStream(jvm().dev.fyp.ops.WatermarkFloor.of(internal_rows(t_env, table)._j_data_stream, uid, name))
    return _with_rowtime(t_env, floored, rowtime)


def start(handle: JobHandle) -> JobHandle:
    handle.client = handle.env.execute_async(handle.name)
    return handle


def consumer_group(cfg: Config, job: str) -> str:
    return cfg.kafka.consumer_group if job == "engagement" else f"{cfg.kafka.consumer_group}-{job}"


def engagement_stream(cfg: Config, t_env, stmts, job: str, input_file: str | None = None) -> str:
    """Registers view `engagement_events` (every raw event with its parsed fields, `route` and the
    time attribute `event_rowtime`) and adds the dead-letter insert to `stmts`. Returns the
    origin label used in side-output headers."""
    sql.register_functions(t_env)
    topics = cfg.kafka.topics
    if input_file is not None:
        t_env.execute_sql(sql.file_source_ddl(cfg, "engagement_raw", str(Path(input_file).resolve())))
        origin, routed_from = f"file:{Path(input_file).name}", "engagement_raw"
    else:
        # (the source's name: the job's metrics find it by it, services/observability)
        t_env.execute_sql(sql.kafka_source_ddl(cfg, "engagement_raw", topics.engagement, consumer_group(cfg, job)))
        # the route depends on the watermark: after a restore it must not start below the one the
        # windows behind it restored (a bounded backfill never restores)
        t_env.create_temporary_view("engagement_floored", watermark_floor(
            t_env, t_env.sql_query("SELECT payload, src_partition, src_offset, rowtime AS source_rowtime "
                                   "FROM engagement_raw"), ENGAGEMENT_FLOOR_UID, "route's watermark floor"))
        origin, routed_from = topics.engagement, "engagement_floored"
    t_env.execute_sql(sql.routed_view_sql(cfg, "engagement_routed", routed_from, has_offsets=input_file is None))
    # Read, parse and route once. Without this step the statement set (side outputs) and the
    # DataStream part are planned apart: the topic is read by two sources and each decides
    # "late" against its own watermark, so an event could be neither counted nor sent to late.
    t_env.create_temporary_view(ENGAGEMENT_VIEW, single_stream(t_env, t_env.from_path("engagement_routed")))
    t_env.execute_sql(sql.side_output_sink_ddl(cfg, "dead_letter_sink", topics.dead_letter))
    stmts.add_insert_sql(sql.dead_letter_insert("dead_letter_sink", ENGAGEMENT_VIEW, origin, job))
    return origin


def video_metadata(cfg: Config, t_env, stmts, job: str, uploads_file: str | None = None) -> None:
    """Registers the enriched view `engagement_enriched`: every valid view with the category,
    creator and upload time of its video as of the view's event time, '' and -1 when unknown (no
    upload at or before that time arrived in time; a view waits for the uploads' watermark, which
    stops holding views back after `enrichment.metadata_wait` without uploads). Invalid uploads go
    to the dead-letter topic."""
    topics = cfg.kafka.topics
    if uploads_file is not None:
        t_env.execute_sql(sql.upload_file_source_ddl(cfg, "uploads_raw", str(Path(uploads_file).resolve())))
        origin = f"file:{Path(uploads_file).name}"
    else:
        t_env.execute_sql(sql.upload_kafka_source_ddl(cfg, "uploads_raw", topics.uploads, consumer_group(cfg, job)))
        origin = topics.uploads
    t_env.execute_sql(sql.uploads_routed_view_sql("uploads_parsed", "uploads_raw", has_offsets=uploads_file is None))
    # one read of the topic for the join and the dead letters alike (as for the engagement stream)
    t_env.create_temporary_view("uploads_routed", single_stream(t_env, t_env.from_path("uploads_parsed"), "rowtime"))
    views = t_env.sql_query(sql.join_views_sql(ENGAGEMENT_VIEW))
    uploads = t_env.sql_query(sql.join_uploads_sql("uploads_routed"))
    joined = as_of_upload_join(t_env, views, uploads)
    # one join for every family that reads the view: the view only adds each reader's projection
    t_env.create_temporary_view("engagement_joined", t_env.from_data_stream(
        joined, Schema.new_builder()
        .column_by_expression("event_rowtime", "TO_TIMESTAMP_LTZ(event_time, 3)")
        .watermark("event_rowtime", "SOURCE_WATERMARK()").build()))
    t_env.execute_sql(sql.enriched_view_sql(ENRICHED_VIEW, "engagement_joined"))
    stmts.add_insert_sql(sql.dead_letter_insert("dead_letter_sink", "uploads_routed", origin, job,
                                                schema=sql.UPLOAD_SCHEMA_LABEL))


def as_of_upload_join(t_env, views, uploads):
    """Views (sql.VIEW_FIELDS) with the metadata fields of sql.UPLOAD_FIELDS as of each view's
    event time, in the JVM (jobs/jvm AsOfUploadJoin); nulls when unknown."""
    from pyflink.datastream import DataStream

    v, u = sql.VIEW_FIELDS, sql.UPLOAD_FIELDS
    appended = int_array([u.index(f) for f in ("category", "creator_id", "upload_time")])
    j_out = jvm().dev.fyp.ops.AsOfUploadJoin.join(
        internal_rows(t_env, views)._j_data_stream, v.index("video_id"), v.index("event_time"),
        internal_rows(t_env, uploads)._j_data_stream, u.index("video_id"), u.index("version_time"),
        appended, METADATA_JOIN_UID, "views with upload metadata")
    # the spike family decides "interval closed" on this stream's watermark (see watermark_floor)
    return DataStream(jvm().dev.fyp.ops.WatermarkFloor.of(j_out, ENRICHED_FLOOR_UID, "enriched watermark floor"))
