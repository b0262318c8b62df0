"""The engagement job: engagement events -> per-video 1h/6h/24h features -> feature-updates topic.

Graph (one Flink job):
  raw events (Kafka, or a JSON-lines file for a backfill) with an event-time watermark
    -> parse + validate once per event in the JVM (jobs/jvm), route each event
       invalid -> dead-letter topic     late (beyond allowed lateness) -> late topic
       tile -> per-video sums per emit step (TUMBLE, JVM)  |  correction -> as is
    -> JVM, keyed by video: sliding sums over tiles (jobs/jvm SlidingTileSums, typed state)
       -> the group's features (operators/engagement.py FEATURES) and the update message
    -> feature-updates topic (batches of updates, key = the subtask) -> writer service -> Redis
No step of it runs in Python.
"""
from __future__ import annotations

from pathlib import Path

from settings.config import Config
from jobs import front, sql
from jobs.keyed import NO_END, jvm, jvm_keyed_process, long_array
from operators.engagement import METRICS, contribution_sql, operator_spec
from schemas.features import VIDEO_ENGAGEMENT

JOB_NAME = "engagement"
# State of the JVM operator (long arrays); the Python operator before it had its own uid, as its
# pickled state cannot be read by this one.
UID = "engagement-sliding-tile-sums"


def _contribution_columns(cfg: Config, aggregate: bool) -> str:
    exprs = contribution_sql(cfg.engagement.score_weights)
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
    function = jvm().dev.fyp.ops.SlidingTileSums(VIDEO_ENGAGEMENT, operator_spec(), e.tile, e.emit_interval,
                                                 long_array(e.window_ms), len(METRICS),
                                                 NO_END if end_of_input_as_of is None else end_of_input_as_of)
    return jvm_keyed_process(t_env, contributions, function, front.UPDATE_TYPE, uid=UID,
                             name="sliding 1h/6h/24h per video")
