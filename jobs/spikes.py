"""The spike job: engagement events -> spike score, state and ranking damping of every video
(operators/spikes.py) -> feature-updates topic; state changes -> spike-transitions topic, from
which the alerter (services/alerts/) raises deduplicated on-call alerts.

Graph (one Flink job):
  engagement events (shared front: parse, validate, route; dead letters and late events out),
  joined with upload metadata as of each view (the upload time: a new upload has no past)
    -> per (video, interval) views, regions, upload time (TUMBLE, JVM)
    -> per interval: every video's counts as arrays and the platform's totals (a second TUMBLE
       over the first one's rows, JVM); late views one by one
    -> Python, one call per interval: the whole platform's step over arrays
    -> feature-updates topic (video_spikes group), spike-transitions topic
"""
from __future__ import annotations

from jobs import front, sql
from jobs.keyed import single_key_stream
from jobs.spikes_fn import (CORRECTION, INPUT_TYPE, INTERVAL, KIND_TRANSITION, KIND_UPDATE, OUTPUT_TYPE,
                            SpikeBookFunction)
from operators.spikes import SpikeRules
from settings.config import Config

JOB_NAME = "spikes"
UID = "spike-book"
OPERATOR = "spike state of every video"
NEEDS = front.Needs(late=True, metadata=True)


def transition_sink_ddl(cfg: Config, table: str) -> str:
    return sql.keyed_update_sink_ddl(cfg, table, cfg.kafka.topics.spike_transitions)


def build(cfg: Config, *, input_file: str | None = None, uploads_file: str | None = None,
          restore_from=None) -> front.JobHandle:
    job = front.new_job(cfg, JOB_NAME, input_file, restore_from)
    front.prepare(cfg, job, JOB_NAME, [NEEDS], input_file, uploads_file)
    wire(cfg, job)
    return front.finish(job)


def book_worker_nice(cfg: Config) -> int:
    """The book's worker yields the cores to the per-second path; in loopback mode it runs in the
    driver, beside the feature writer, and keeps its priority."""
    return cfg.flink.spike_worker_nice if cfg.flink.python_worker_mode == "process" else 0


def wire(cfg: Config, job: front.JobHandle) -> None:
    """The family on a prepared front (front.prepare with NEEDS): its feature updates (inserted
    here, beside the transitions: one Python operator emits both)."""
    t_env = job.t_env
    t_env.execute_sql(transition_sink_ddl(cfg, "transition_sink"))
    n, every = cfg.spikes.interval, sql.interval(cfg.spikes.interval)
    # A view whose interval the window has already closed (the watermark passed the interval's end)
    # would be dropped by it: it goes on alone as a correction. Everything else, the front's
    # corrections of a 1 s step included, is counted in its interval. The test is made once, on one
    # stream that both branches read (see jobs/interests.py); it carries the views' time attribute
    # through (front.single_stream takes each record's timestamp from it).
    wm = "CURRENT_WATERMARK(event_rowtime)"
    interval_end = f"TO_TIMESTAMP_LTZ(event_time - MOD(event_time, {n}) + {n} - 1, 3)"
    flagged = t_env.sql_query(f"""
SELECT video_id, event_time, region, upload_time, event_rowtime AS view_rowtime,
       {wm} IS NOT NULL AND {interval_end} <= {wm} AS closed
FROM {front.ENRICHED_VIEW} WHERE route IN ('tile', 'correction')""")
    t_env.create_temporary_view("spike_views", front.single_stream(t_env, flagged))
    t_env.execute_sql(f"""CREATE TEMPORARY VIEW spike_video_intervals AS
SELECT video_id, MIN(event_time - MOD(event_time, {n})) AS interval_start, window_time AS interval_time,
       COUNT(*) AS n_views, COUNT(DISTINCT region) AS regions, MAX(upload_time) AS uploaded_at
FROM TABLE(TUMBLE(TABLE spike_views, DESCRIPTOR(event_rowtime), {every}))
WHERE NOT closed
GROUP BY video_id, window_start, window_end, window_time""")
    batches = t_env.sql_query(f"""
SELECT '{INTERVAL}' AS kind, MIN(interval_start) AS interval_start, ARRAY_AGG(video_id) AS video_ids,
       ARRAY_AGG(n_views) AS n_views, ARRAY_AGG(regions) AS regions, ARRAY_AGG(uploaded_at) AS uploaded_at,
       SUM(n_views) AS platform_views, COUNT(*) AS platform_videos
FROM TABLE(TUMBLE(TABLE spike_video_intervals, DESCRIPTOR(interval_time), {every}))
GROUP BY window_start, window_end
UNION ALL
SELECT '{CORRECTION}', event_time - MOD(event_time, {n}), ARRAY[video_id], ARRAY[CAST(1 AS BIGINT)],
       ARRAY[CAST(1 AS BIGINT)], ARRAY[upload_time], CAST(0 AS BIGINT), CAST(0 AS BIGINT)
FROM spike_views WHERE closed""")
    out = (single_key_stream(t_env, batches, INPUT_TYPE)  # one book
           .process(SpikeBookFunction(SpikeRules.from_config(cfg.spikes), book_worker_nice(cfg)), output_type=OUTPUT_TYPE)
           .uid(UID).name(OPERATOR)
           .set_parallelism(1))  # one key: a second task would only start an idle Python worker
    t_env.create_temporary_view("spike_outputs", t_env.from_data_stream(out))
    # the sinks take UTF-8 bytes (sql.keyed_update_sink_ddl); these few records are encoded here
    job.stmts.add_insert_sql(f"INSERT INTO feature_update_sink SELECT entity_id, CAST(payload AS BYTES) "
                             f"FROM spike_outputs WHERE kind = '{KIND_UPDATE}'")
    job.stmts.add_insert_sql(f"INSERT INTO transition_sink SELECT entity_id, CAST(payload AS BYTES) "
                             f"FROM spike_outputs WHERE kind = '{KIND_TRANSITION}'")
