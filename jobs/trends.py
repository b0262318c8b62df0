"""The trends job: engagement events -> per region and GLOBAL, top K videos by trend score over
each window with velocity (operators/trends.py) -> feature-updates topic.

Graph (one Flink job):
  engagement events (shared front: parse, validate, route; dead letters and late events out)
    -> per (region, video, minute) trend-score sums (TUMBLE, JVM), plus the same per video for
       GLOBAL; corrections (behind the watermark, within the allowed lateness) one by one
    -> Python, keyed by region: sliding sums per video over minute tiles, re-ranked each minute
    -> feature-updates topic
"""
from __future__ import annotations

from fyp.config import Config
from jobs import front, sql
from jobs.engagement import JobHandle
from jobs.flink_env import create_environments
from jobs.keyed import keyed_by_first_field
from jobs.trends_fn import OUTPUT_TYPE, RegionTrendsFunction
from operators.trends import GLOBAL, MINUTE_MS, TrendWeights, score_sql

JOB_NAME = "trends"
UID = "region-trends"
OPERATOR = "top videos per region"


def build(cfg: Config, *, input_file: str | None = None, restore_from=None,
          end_of_input_as_of: int | None = None) -> JobHandle:
    """Streaming from Kafka unless `input_file` is given (a backfill whose lists end as of
    `end_of_input_as_of`)."""
    bounded = input_file is not None
    name = JOB_NAME if not bounded else JOB_NAME + "-backfill"
    env, t_env = create_environments(cfg, name, streaming_checkpoints=not bounded, restore_from=restore_from)
    stmts = t_env.create_statement_set()
    origin = front.engagement_stream(cfg, t_env, stmts, JOB_NAME, input_file)
    topics = cfg.kafka.topics
    t_env.execute_sql(sql.side_output_sink_ddl(cfg, "late_sink", topics.late))
    stmts.add_insert_sql(sql.late_insert("late_sink", front.ENGAGEMENT_VIEW, origin, JOB_NAME))
    t_env.execute_sql(sql.keyed_update_sink_ddl(cfg, "feature_update_sink", topics.feature_updates))

    t = cfg.trends
    score = score_sql(TrendWeights(**vars(t.weights)))
    minute = sql.interval(MINUTE_MS)
    tiles = f"""
SELECT {{region}} AS region, video_id, MIN(event_time - MOD(event_time, {MINUTE_MS})) AS minute_start,
       SUM({score}) AS score, COUNT(*) AS n_views
FROM TABLE(TUMBLE(TABLE {front.ENGAGEMENT_VIEW}, DESCRIPTOR(event_rowtime), {minute}))
WHERE route = 'tile'
GROUP BY {{group}}video_id, window_start, window_end"""
    corrections = f"""
SELECT {{region}} AS region, video_id, event_time - MOD(event_time, {MINUTE_MS}) AS minute_start,
       {score} AS score, CAST(1 AS BIGINT) AS n_views
FROM {front.ENGAGEMENT_VIEW} WHERE route = 'correction'"""
    parts = [q.format(region=r, group=g) for q in (tiles, corrections)
             for r, g in (("region", "region, "), (f"'{GLOBAL}'", ""))]
    minute_sums = t_env.sql_query("\nUNION ALL\n".join(parts))
    updates = (keyed_by_first_field(t_env, minute_sums)
               .process(RegionTrendsFunction(t.window_ms, t.top_k, end_of_input_as_of), output_type=OUTPUT_TYPE)
               .uid(UID).name(OPERATOR))
    t_env.create_temporary_view("feature_updates", t_env.from_data_stream(updates))
    stmts.add_insert_sql("INSERT INTO feature_update_sink SELECT entity_id, payload FROM feature_updates")
    stmts.attach_as_datastream()
    return JobHandle(env, t_env, name)
