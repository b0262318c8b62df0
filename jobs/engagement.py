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

from pathlib import Path

from fyp.config import Config
from jobs import front, sql
from jobs.engagement_window_fn import OUTPUT_TYPE, SlidingEngagementFunction
from jobs.keyed import keyed_by_first_field
from operators.engagement import METRICS, Weights, contribution_sql

JOB_NAME = "engagement"
UID = "engagement-sliding-windows"


def _contribution_columns(cfg: Config, aggregate: bool) -> str:
    exprs = contribution_sql(Weights(**vars(cfg.engagement.score_weights)))
    if aggregate:
        return ", ".join(f"SUM({exprs[m]}) AS m_{m}" for m in METRICS)
    return ", ".join(f"{exprs[m]} AS m_{m}" for m in METRICS)


NEEDS = front.Needs(late=True)


def build(cfg: Config, *, input_file: str | None = None, restore_from: Path | None = None,
          end_of_input_as_of: int | None = None) -> front.JobHandle:
    """Wires the job. Streaming from Kafka unless `input_file` is given (bounded backfill)."""
    job = front.new_job(cfg, JOB_NAME, input_file, restore_from)
    front.prepare(cfg, job, JOB_NAME, [NEEDS], input_file)
    return front.finish(job, wire(cfg, job, end_of_input_as_of))


def wire(cfg: Config, job: front.JobHandle, end_of_input_as_of: int | None = None):
    """The family on a prepared front (front.prepare with NEEDS): its feature updates, a DataStream
    of (entity_id, payload)."""
    t_env = job.t_env
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
    return updates
