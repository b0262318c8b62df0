"""The spike job: engagement events -> per video spike score, state and ranking damping
(operators/spikes.py) -> feature-updates topic; state changes -> spike-transitions topic, from
which the alerter (services/alerts/) raises deduplicated on-call alerts.

Graph (one Flink job):
  engagement events (shared front: parse, validate, route; dead letters and late events out)
    -> per (video, interval) views, regions, shares, skips (TUMBLE, JVM); corrections one by one
    -> Python, keyed by video: detector + state machine, one row per (video, interval with views)
    -> feature-updates topic (video_spikes group), spike-transitions topic
"""
from __future__ import annotations

from settings.config import Config
from jobs import front, sql
from jobs.keyed import keyed_by_first_field
from jobs.spikes_fn import KIND_TRANSITION, KIND_UPDATE, OUTPUT_TYPE, VideoSpikesFunction
from operators.spikes import SpikeRules

JOB_NAME = "spikes"
UID = "video-spikes"
OPERATOR = "spike state per video"
NEEDS = front.Needs(late=True)


def transition_sink_ddl(cfg: Config, table: str) -> str:
    return sql.keyed_update_sink_ddl(cfg, table, cfg.kafka.topics.spike_transitions)


def build(cfg: Config, *, input_file: str | None = None, restore_from=None) -> front.JobHandle:
    job = front.new_job(cfg, JOB_NAME, input_file, restore_from)
    front.prepare(cfg, job, JOB_NAME, [NEEDS], input_file)
    wire(cfg, job)
    return front.finish(job)


def wire(cfg: Config, job: front.JobHandle) -> None:
    """The family on a prepared front (front.prepare with NEEDS): its feature updates (inserted
    here, beside the transitions: one Python operator emits both)."""
    t_env = job.t_env
    t_env.execute_sql(transition_sink_ddl(cfg, "transition_sink"))

    n = cfg.spikes.interval
    counts = f"""
SELECT video_id, MIN(event_time - MOD(event_time, {n})) AS interval_start, COUNT(*) AS n_views,
       COUNT(DISTINCT region) AS regions, SUM(CASE WHEN shared THEN 1 ELSE 0 END) AS shares,
       SUM(CASE WHEN skipped THEN 1 ELSE 0 END) AS skips
FROM TABLE(TUMBLE(TABLE {front.ENGAGEMENT_VIEW}, DESCRIPTOR(event_rowtime), {sql.interval(n)}))
WHERE route = 'tile'
GROUP BY video_id, window_start, window_end
UNION ALL
SELECT video_id, event_time - MOD(event_time, {n}) AS interval_start, CAST(1 AS BIGINT) AS n_views,
       CAST(1 AS BIGINT) AS regions, CAST(CASE WHEN shared THEN 1 ELSE 0 END AS BIGINT) AS shares,
       CAST(CASE WHEN skipped THEN 1 ELSE 0 END AS BIGINT) AS skips
FROM {front.ENGAGEMENT_VIEW} WHERE route = 'correction'"""
    rows = t_env.sql_query(counts)
    out = (keyed_by_first_field(t_env, rows)
           .process(VideoSpikesFunction(SpikeRules.from_config(cfg.spikes), cfg.spikes.idle_ttl),
                    output_type=OUTPUT_TYPE)
           .uid(UID).name(OPERATOR))
    t_env.create_temporary_view("spike_outputs", t_env.from_data_stream(out))
    job.stmts.add_insert_sql(f"INSERT INTO feature_update_sink SELECT entity_id, payload FROM spike_outputs "
                             f"WHERE kind = '{KIND_UPDATE}'")
    job.stmts.add_insert_sql(f"INSERT INTO transition_sink SELECT entity_id, payload FROM spike_outputs "
                             f"WHERE kind = '{KIND_TRANSITION}'")
