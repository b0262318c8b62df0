"""The combined job: every family from one read, parse and route of the engagement stream (and one
of the uploads), in one Flink job whose feature updates go to one writer.

  engagement-events, upload-events -> shared front (jobs/front.py): parse, validate, route once;
     dead letters and late events tagged `features`; metadata join once
  -> engagement (sliding windows per video), interests (per user), trends (per region): feature
     updates, one sink; spikes: its updates and transitions; milestones: crossings
Each family is wired exactly as in its own job (their `wire` functions), so a family's values are
the same whichever job computes them.
"""
from __future__ import annotations

from settings.config import Config
from jobs import engagement, front, interests, milestones, spikes, trends

JOB_NAME = "features"
FAMILIES = (engagement, interests, trends, milestones, spikes)


def build(cfg: Config, *, input_file: str | None = None, uploads_file: str | None = None, restore_from=None,
          end_of_input_as_of: int | None = None, trends_as_of: int | None = None) -> front.JobHandle:
    """Streaming from Kafka unless `input_file` (and `uploads_file`) are given: a backfill whose
    engagement features end as of `end_of_input_as_of` and trend lists as of `trends_as_of`."""
    job = front.new_job(cfg, JOB_NAME, input_file, restore_from)
    front.prepare(cfg, job, JOB_NAME, [f.NEEDS for f in FAMILIES], input_file, uploads_file)
    updates = [engagement.wire(cfg, job, end_of_input_as_of), interests.wire(cfg, job),
               trends.wire(cfg, job, trends_as_of)]
    milestones.wire(cfg, job)
    spikes.wire(cfg, job)
    return front.finish(job, updates[0].union(*updates[1:]))
