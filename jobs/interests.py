"""The interests job: engagement events + video metadata -> per-user decayed interest vectors
over categories and creators (operators/interests.py) -> feature-updates topic.

Graph (one Flink job):
  engagement events (shared front: parse, validate, dead letters)   upload events -> versioned
    -> event-time temporal join with video metadata (category, creator; '' when unknown)
    -> per user, per `interests.emit_interval` of processing time: the batch's views packed into
       one row with their strength computed in the JVM
    -> Python, keyed by user: decayed vectors, top N, eviction timers -> feature-updates topic
"""
from __future__ import annotations

from fyp.config import Config
from jobs import front, sql
from jobs.interests_fn import OUTPUT_TYPE, UserInterestFunction
from jobs.keyed import keyed_by_first_field
from operators.interests import FIELD_SEP, RECORD_SEP, StrengthWeights, strength_sql

JOB_NAME = "interests"
UID = "user-interests"
OPERATOR = "decayed interests per user"  # its metrics: users_created, users_evicted


def build(cfg: Config, *, input_file: str | None = None, uploads_file: str | None = None,
          restore_from=None) -> front.JobHandle:
    job = front.new_job(cfg, JOB_NAME, input_file, restore_from, state_ttl_ms=cfg.enrichment.metadata_ttl)
    t_env = job.t_env
    front.engagement_stream(cfg, t_env, job.stmts, JOB_NAME, input_file)
    front.video_metadata(cfg, t_env, job.stmts, JOB_NAME, uploads_file)
    front.feature_update_sink(cfg, t_env)

    i = cfg.interests
    w = StrengthWeights(**vars(i.weights))
    # Processing-time batches: the decayed sums are exact whatever the grouping, and no view can
    # be dropped as late by an event-time window after the join.
    t_env.execute_sql(f"""CREATE TEMPORARY VIEW interest_views AS
SELECT user_id, event_time, category, creator_id, {strength_sql(w)} AS strength, PROCTIME() AS proc
FROM {front.ENRICHED_VIEW}""")
    packed = t_env.sql_query(f"""
SELECT user_id,
       LISTAGG(CONCAT(CAST(event_time AS STRING), '{FIELD_SEP}', category, '{FIELD_SEP}', creator_id,
                      '{FIELD_SEP}', CAST(strength AS STRING)), '{RECORD_SEP}') AS packed
FROM TABLE(TUMBLE(TABLE interest_views, DESCRIPTOR(proc), {sql.interval(i.emit_interval)}))
GROUP BY user_id, window_start, window_end""")
    updates = (keyed_by_first_field(t_env, packed)
               .process(UserInterestFunction(i.decay, i.top_n, i.prune_below, i.min_events, i.newcomer_ttl,
                                             i.idle_ttl), output_type=OUTPUT_TYPE)
               .uid(UID).name(OPERATOR))
    return front.finish(job, updates)
