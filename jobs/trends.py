"""The trends job: engagement events -> per region and GLOBAL, top K videos by trend score over
each window with velocity (operators/trends.py) -> feature-updates topic.

Graph (one Flink job):
  engagement events (shared front: parse, validate, route; dead letters and late events out)
    -> per (region, video, minute) trend-score sums (TUMBLE, JVM), and per (video, minute) for
       GLOBAL rolled up from them; corrections (behind the watermark, within the allowed
       lateness) one by one
    -> JVM, keyed by region: sliding sums per video over minute tiles, re-ranked each minute
       (jobs/jvm TopBySlidingScore, typed state) -> update messages
    -> feature-updates topic
No step of it runs in Python.
"""
from __future__ import annotations

from settings.config import Config
from jobs import front, sql
from jobs.keyed import NO_END, jvm, jvm_keyed_process, long_array
from operators.trends import GLOBAL, MINUTE_MS, score_sql
from schemas.features import REGION_TRENDS

JOB_NAME = "trends"
UID = "region-top-by-sliding-score"  # typed JVM state; the Python operator before it was "region-trends"
OPERATOR = "top videos per region"
REGION_TILES_VIEW = "trend_region_minutes"
NEEDS = front.Needs(late=True)


def build(cfg: Config, *, input_file: str | None = None, restore_from=None,
          end_of_input_as_of: int | None = None) -> front.JobHandle:
    """Streaming from Kafka unless `input_file` is given (a backfill whose lists end as of
    `end_of_input_as_of`)."""
    job = front.new_job(cfg, JOB_NAME, input_file, restore_from)
    front.prepare(cfg, job, JOB_NAME, [NEEDS], input_file)
    return front.finish(job, wire(cfg, job, end_of_input_as_of))


def wire(cfg: Config, job: front.JobHandle, end_of_input_as_of: int | None = None):
    """The family on a prepared front (front.prepare with NEEDS): its feature updates."""
    t_env = job.t_env
    t = cfg.trends
    score = score_sql(t.weights)
    minute = sql.interval(MINUTE_MS)
    # Per (region, video, minute) from the events; GLOBAL per (video, minute) rolled up from those
    # rows (a cascaded window: it fires on the same watermark), not from the events again: one
    # score and one local aggregation per event instead of two. Exact: the scores are integers.
    regional = t_env.sql_query(f"""
SELECT region, video_id, MIN(event_time - MOD(event_time, {MINUTE_MS})) AS minute_start,
       SUM({score}) AS score, COUNT(*) AS n_views, window_time AS tile_time
FROM TABLE(TUMBLE(TABLE {front.ENGAGEMENT_VIEW}, DESCRIPTOR(event_rowtime), {minute}))
WHERE route = 'tile'
GROUP BY region, video_id, window_start, window_end, window_time""")
    t_env.create_temporary_view(REGION_TILES_VIEW, regional)
    tiles = [f"SELECT region, video_id, minute_start, score, n_views FROM {REGION_TILES_VIEW}",
             f"""SELECT '{GLOBAL}' AS region, video_id, MIN(minute_start) AS minute_start, SUM(score) AS score,
       SUM(n_views) AS n_views
FROM TABLE(TUMBLE(TABLE {REGION_TILES_VIEW}, DESCRIPTOR(tile_time), {minute}))
GROUP BY video_id, window_start, window_end"""]
    corrections = f"""
SELECT {{region}} AS region, video_id, event_time - MOD(event_time, {MINUTE_MS}) AS minute_start,
       {score} AS score, CAST(1 AS BIGINT) AS n_views
FROM {front.ENGAGEMENT_VIEW} WHERE route = 'correction'"""
    parts = tiles + [corrections.format(region=r) for r in ("region", f"'{GLOBAL}'")]
    minute_sums = t_env.sql_query("\nUNION ALL\n".join(parts))
    function = jvm().dev.fyp.ops.TopBySlidingScore(REGION_TRENDS, long_array(t.window_ms), t.top_k,
                                                   NO_END if end_of_input_as_of is None else end_of_input_as_of)
    return jvm_keyed_process(t_env, minute_sums, function, front.UPDATE_TYPE, uid=UID, name=OPERATOR)
