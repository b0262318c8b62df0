"""The milestones job: engagement events + video metadata -> each video's running view total ->
one crossing record per (video, threshold) on the internal milestone-crossings topic. The
notifier (services/notifier.py) turns crossings into exactly one notification each.

All in the JVM: there is nothing per event for Python to do.
  engagement events (shared front)  upload events -> versioned metadata
    -> metadata as of each view's time (creator; a video's views leave the join as the watermark passes them)
    -> running COUNT per video in arrival order (OVER ... ORDER BY PROCTIME())
    -> rows whose total equals a threshold -> milestone-crossings (key = video id)

Counting order: every valid view (on time, correction or late), in the order the join releases
them: on-time views by event time, views behind the watermark when they arrive. The crossing time
is the event time of the view that brought the total to the threshold.
"""
from __future__ import annotations

from settings.config import Config
from jobs import front, sql

JOB_NAME = "milestones"
NEEDS = front.Needs(metadata=True, updates=False)


def crossing_sink_ddl(cfg: Config, table: str) -> str:
    return f"""CREATE TEMPORARY TABLE {table} (
  video_id STRING,
  payload STRING
) WITH (
  'connector' = 'kafka',
  'topic' = {sql.quote(cfg.kafka.topics.milestone_crossings)},
{sql.kafka_connection(cfg)}{sql.kafka_sink_options()}  'key.format' = 'raw',
  'key.fields' = 'video_id',
  'value.format' = 'raw',
  'value.fields-include' = 'EXCEPT_KEY'
)"""


def build(cfg: Config, *, input_file: str | None = None, uploads_file: str | None = None,
          restore_from=None) -> front.JobHandle:
    job = front.new_job(cfg, JOB_NAME, input_file, restore_from)
    front.prepare(cfg, job, JOB_NAME, [NEEDS], input_file, uploads_file)
    wire(cfg, job)
    return front.finish(job)


def wire(cfg: Config, job: front.JobHandle) -> None:
    """The family on a prepared front (front.prepare with NEEDS): crossings to their topic."""
    t_env, stmts = job.t_env, job.stmts
    t_env.execute_sql(crossing_sink_ddl(cfg, "crossing_sink"))
    thresholds = ", ".join(str(int(x)) for x in sorted(cfg.milestones.thresholds))
    t_env.execute_sql(f"""CREATE TEMPORARY VIEW milestone_views AS
SELECT video_id, creator_id, event_time, PROCTIME() AS proc FROM {front.ENRICHED_VIEW}""")
    stmts.add_insert_sql(f"""INSERT INTO crossing_sink
SELECT video_id, JSON_OBJECT(
    KEY 'id' VALUE CONCAT(video_id, ':', CAST(total AS STRING)),
    KEY 'video_id' VALUE video_id,
    KEY 'creator_id' VALUE creator_id,
    KEY 'milestone' VALUE total,
    KEY 'crossed_at' VALUE event_time)
FROM (
  SELECT video_id, creator_id, event_time,
         COUNT(*) OVER (PARTITION BY video_id ORDER BY proc
                        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS total
  FROM milestone_views)
WHERE total IN ({thresholds})""")
