"""Flink SQL text for the shared front of every job: raw source with watermark, one-parse
validation in the JVM, routing of each event to tile / correction / late / dead-letter, and the
Kafka sinks for the side outputs. Rendered from the schemas and the config; no logic lives here
that is not also in schemas/ or operators/."""
from __future__ import annotations

from operators.exact_sums import ROUND_FN
from settings.config import Config
from settings.kafka_clients import flink_sink_properties, sql_options
from schemas.engagement import ENGAGEMENT_V1, EVENT_TIME_FIELD
from schemas.upload import UPLOAD_TIME_FIELD, UPLOAD_V1

PARSE_FN = "FYP_PARSE_RECORD"
ENGAGEMENT_SCHEMA_LABEL = f"{ENGAGEMENT_V1.name}.v{ENGAGEMENT_V1.version}"
UPLOAD_SCHEMA_LABEL = f"{UPLOAD_V1.name}.v{UPLOAD_V1.version}"
EVENT_TIME_FN = "FYP_EVENT_TIME_OF"


def interval(ms: int) -> str:
    """A day-time interval literal of `ms` milliseconds."""
    days, rest = divmod(ms, 86_400_000)
    h, rest = divmod(rest, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, milli = divmod(rest, 1000)
    return f"INTERVAL '{days} {h:02d}:{m:02d}:{s:02d}.{milli:03d}' DAY TO SECOND(3)"


def quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def kafka_connection(cfg: Config) -> str:
    """The connector's 'properties.*' options for bootstrap and security (settings/kafka_clients.py):
    lines of a WITH clause, each ending with a comma. Holds the SASL password: never print it
    unredacted (settings.kafka_clients.redacted)."""
    return sql_options(cfg.kafka, quote)


def kafka_sink_options() -> str:
    """How every Kafka sink of the jobs delivers: at least once, in order, without idempotence
    (settings.kafka_clients.PRODUCER_DELIVERY says why). Lines of a WITH clause, as kafka_connection."""
    options = {**flink_sink_properties(), "sink.delivery-guarantee": "at-least-once"}
    return "".join(f"  {quote(k)} = {quote(v)},\n" for k, v in options.items())


def register_functions(t_env) -> None:
    t_env.execute_sql(f"CREATE TEMPORARY FUNCTION IF NOT EXISTS {PARSE_FN} AS 'dev.fyp.udf.ParseJsonRecord' LANGUAGE JAVA")
    t_env.execute_sql(f"CREATE TEMPORARY FUNCTION IF NOT EXISTS {EVENT_TIME_FN} AS 'dev.fyp.udf.EventTimeOf' LANGUAGE JAVA")
    t_env.execute_sql(f"CREATE TEMPORARY FUNCTION IF NOT EXISTS {ROUND_FN} AS 'dev.fyp.udf.RoundHalfUp' LANGUAGE JAVA")


def _watermark_columns(cfg: Config, time_field: str = EVENT_TIME_FIELD) -> str:
    # the time of valid records only (EventTimeOf validates the whole record): a malformed record
    # with a time ahead of the stream must not push the watermark past the valid records around it
    schema = UPLOAD_V1 if time_field == UPLOAD_TIME_FIELD else ENGAGEMENT_V1
    return (f"  rowtime AS TO_TIMESTAMP_LTZ({EVENT_TIME_FN}(payload, {quote(time_field)}, "
            f"{quote(schema.descriptor_json())}), 3),\n"
            f"  WATERMARK FOR rowtime AS rowtime - {interval(cfg.engagement.max_out_of_orderness)}")


# A caught-up fetch waits on the broker up to this long. tansu answers a waiting fetch late when a
# record arrives (a record produced to a caught-up consumer: 71 ms at the median, 203 ms at worst
# with Kafka's default 500; 13 ms with 50), and that wait is on every feature's way to Redis. The
# services' consumers (services/partition_reader.py) wait as long.
FETCH_MAX_WAIT_MS = 50


def kafka_source_ddl(cfg: Config, table: str, topic: str, group_id: str, time_field: str = EVENT_TIME_FIELD,
                     idle_timeout_ms: int = 0) -> str:
    k = cfg.kafka
    idle = f"\n  'scan.watermark.idle-timeout' = '{idle_timeout_ms} ms'," if idle_timeout_ms else ""
    startup = "'scan.startup.mode' = 'earliest-offset'" if k.starting_offsets == "earliest" else \
        "'scan.startup.mode' = 'group-offsets', 'properties.auto.offset.reset' = 'earliest'"
    return f"""CREATE TEMPORARY TABLE {table} (
  payload BYTES,
  src_partition INT METADATA FROM 'partition' VIRTUAL,
  src_offset BIGINT METADATA FROM 'offset' VIRTUAL,
{_watermark_columns(cfg, time_field)}
) WITH (
  'connector' = 'kafka',
  'topic' = {quote(topic)},{idle}
{kafka_connection(cfg)}  'properties.group.id' = {quote(group_id)},
  'properties.session.timeout.ms' = '6000',
  'properties.fetch.max.wait.ms' = '{FETCH_MAX_WAIT_MS}',
  {startup},
  'scan.watermark.emit.strategy' = {quote(cfg.flink.watermark_emit)},
  'format' = 'raw'
)"""


def file_source_ddl(cfg: Config, table: str, path: str, time_field: str = EVENT_TIME_FIELD) -> str:
    return f"""CREATE TEMPORARY TABLE {table} (
  payload BYTES,
{_watermark_columns(cfg, time_field)}
) WITH (
  'connector' = 'filesystem',
  'path' = {quote(path)},
  'format' = 'raw'
)"""


def routed_view_sql(cfg: Config, view: str, source: str, has_offsets: bool) -> str:
    """Every raw event with its parsed fields and a route:
    invalid     failed validation (reason in `error`)            -> dead-letter topic
    late        more than allowed_lateness behind the watermark  -> late topic
    correction  behind the watermark, its emit step already closed -> applied one by one
    tile        everything else                                  -> per-step tile sums (JVM)"""
    e = cfg.engagement
    step = e.emit_interval
    descriptor = quote(ENGAGEMENT_V1.descriptor_json())
    offsets = "s.src_partition, s.src_offset" if has_offsets else \
        "CAST(NULL AS INT) AS src_partition, CAST(NULL AS BIGINT) AS src_offset"
    wm = "CURRENT_WATERMARK(s.rowtime)"
    parsed = ", ".join((*ENGAGEMENT_V1.field_names, "error"))
    # The raw payload goes on only where a side output needs it (dead letters, late events): every
    # valid event would otherwise carry its bytes through each step of the front.
    return f"""CREATE TEMPORARY VIEW {view} AS
SELECT CASE WHEN route IN ('invalid', 'late') THEN payload END AS payload, src_partition, src_offset, rowtime,
       {parsed}, route, watermark_at_arrival
FROM (
SELECT s.payload, {offsets}, s.rowtime, p.*,
  CASE
    WHEN p.error IS NOT NULL THEN 'invalid'
    WHEN s.rowtime <> TO_TIMESTAMP_LTZ(p.event_time, 3) THEN 'invalid'
    WHEN {wm} IS NULL THEN 'tile'
    WHEN TO_TIMESTAMP_LTZ(p.event_time + {e.allowed_lateness}, 3) < {wm} THEN 'late'
    WHEN TO_TIMESTAMP_LTZ(p.event_time - MOD(p.event_time, {step}) + {step - 1}, 3) <= {wm} THEN 'correction'
    ELSE 'tile'
  END AS route,
  {wm} AS watermark_at_arrival
FROM {source} AS s, LATERAL TABLE({PARSE_FN}(s.payload, {descriptor})) AS p)"""


def side_output_sink_ddl(cfg: Config, table: str, topic: str) -> str:
    """A topic of original payloads with the reason and origin in Kafka headers (the Kafka
    Connect dead-letter convention)."""
    return f"""CREATE TEMPORARY TABLE {table} (
  payload BYTES,
  headers MAP<STRING, BYTES> METADATA
) WITH (
  'connector' = 'kafka',
  'topic' = {quote(topic)},
{kafka_connection(cfg)}{kafka_sink_options()}  'format' = 'raw'
)"""


def header(name: str, expr: str) -> str:
    return f"{quote(name)}, CAST(CAST({expr} AS STRING) AS BYTES)"


def dead_letter_insert(sink: str, routed: str, origin: str, job: str = "engagement",
                       schema: str = ENGAGEMENT_SCHEMA_LABEL) -> str:
    time_field = UPLOAD_TIME_FIELD if schema == UPLOAD_SCHEMA_LABEL else EVENT_TIME_FIELD
    headers = ", ".join([
        header("reason", f"COALESCE(error, 'in_future:{time_field}')"),
        header("schema", quote(schema)),
        header("job", quote(job)),
        header("origin", quote(origin)),
        header("origin.partition", "COALESCE(CAST(src_partition AS STRING), '')"),
        header("origin.offset", "COALESCE(CAST(src_offset AS STRING), '')"),
    ])
    return f"INSERT INTO {sink} SELECT payload, MAP[{headers}] FROM {routed} WHERE route = 'invalid'"


def late_insert(sink: str, routed: str, origin: str, job: str = "engagement") -> str:
    headers = ", ".join([
        header("reason", "'late'"),
        header("job", quote(job)),
        header("event_time", "event_time"),
        header("watermark", "CAST(watermark_at_arrival AS STRING)"),
        header("origin", quote(origin)),
        header("origin.partition", "COALESCE(CAST(src_partition AS STRING), '')"),
        header("origin.offset", "COALESCE(CAST(src_offset AS STRING), '')"),
    ])
    return f"INSERT INTO {sink} SELECT payload, MAP[{headers}] FROM {routed} WHERE route = 'late'"


# Record batches of the feature-updates producer, per partition (Kafka's default is 16 KB, about 60
# updates): the broker's cost is per batch. Measured on the sparse engagement backfill (1.37M
# updates): tansu 20.6 -> 8.3 CPU-s, until the last update was in Redis 52.6 -> 44.8 s; 1 MB
# gained nothing more. Latency stays linger.ms: a batch is sent when it lingered, full or not.
UPDATE_BATCH_BYTES = 256 * 1024


def keyed_update_sink_ddl(cfg: Config, table: str, topic: str) -> str:
    """A Kafka sink of (entity_id STRING: the record key, payload BYTES: the value as it is; the
    update batches come as UTF-8 bytes, jobs/jvm UpdateBatches)."""
    return f"""CREATE TEMPORARY TABLE {table} (
  entity_id STRING,
  payload BYTES
) WITH (
  'connector' = 'kafka',
  'topic' = {quote(topic)},
{kafka_connection(cfg)}  'properties.linger.ms' = '5',
  'properties.batch.size' = '{UPDATE_BATCH_BYTES}',
{kafka_sink_options()}  'key.format' = 'raw',
  'key.fields' = 'entity_id',
  'value.format' = 'raw',
  'value.fields-include' = 'EXCEPT_KEY'
)"""


def upload_kafka_source_ddl(cfg: Config, table: str, topic: str, group_id: str) -> str:
    return kafka_source_ddl(cfg, table, topic, group_id, UPLOAD_TIME_FIELD, cfg.enrichment.metadata_wait)


def upload_file_source_ddl(cfg: Config, table: str, path: str) -> str:
    return file_source_ddl(cfg, table, path, UPLOAD_TIME_FIELD)


def uploads_routed_view_sql(view: str, source: str, has_offsets: bool) -> str:
    """Every raw upload with its parsed fields and route ok | invalid."""
    descriptor = quote(UPLOAD_V1.descriptor_json())
    offsets = "s.src_partition, s.src_offset" if has_offsets else \
        "CAST(NULL AS INT) AS src_partition, CAST(NULL AS BIGINT) AS src_offset"
    return f"""CREATE TEMPORARY VIEW {view} AS
SELECT s.payload, {offsets}, s.rowtime AS upload_rowtime, p.*,
  CASE WHEN p.error IS NOT NULL OR s.rowtime <> TO_TIMESTAMP_LTZ(p.{UPLOAD_TIME_FIELD}, 3)
       THEN 'invalid' ELSE 'ok' END AS route
FROM {source} AS s, LATERAL TABLE({PARSE_FN}(s.payload, {descriptor})) AS p"""


# The views joined with upload metadata (jobs/jvm AsOfUploadJoin): the view's fields, then these
VIEW_FIELDS = ("event_id", "user_id", "video_id", "event_time", "region", "watch_time_ms", "video_duration_ms",
               "liked", "shared", "commented", "skipped", "rewatches", "route")
UPLOAD_FIELDS = ("video_id", "version_time", "category", "creator_id", "upload_time")  # key, version time, appended


def join_views_sql(events: str) -> str:
    """Valid views (on time, corrections and late alike), as the metadata join takes them."""
    return f"SELECT {', '.join(VIEW_FIELDS)} FROM {events} WHERE route <> 'invalid'"


def join_uploads_sql(uploads: str) -> str:
    """Valid uploads as versions of their video's metadata, from their upload time on."""
    return f"""SELECT video_id, upload_time AS version_time, category, creator_id, upload_time
FROM {uploads} WHERE route = 'ok'"""


def enriched_view_sql(view: str, joined: str) -> str:
    """The joined views with '' and -1 for metadata not known as of the view's time. Planned into
    each reader's own projection: no operator of its own."""
    return f"""CREATE TEMPORARY VIEW {view} AS
SELECT {', '.join(VIEW_FIELDS)}, event_rowtime,
       COALESCE(category, '') AS category, COALESCE(creator_id, '') AS creator_id,
       COALESCE(upload_time, CAST(-1 AS BIGINT)) AS upload_time
FROM {joined}"""
