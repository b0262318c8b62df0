"""The interests job: engagement events + video metadata -> per-user decayed interest vectors
over categories and creators (operators/interests.py) -> feature-updates topic.

Graph (one Flink job):
  engagement events (shared front: parse, validate, dead letters)   upload events -> versioned
    -> video metadata as of each view's time (category, creator; '' when unknown)
    -> each view's strength (SQL, JVM)
    -> JVM, keyed by user: the views of each `interests.emit_interval` of event time, applied when
       the watermark closes it (a view whose step has closed: alone, at once); sessions, decayed
       vectors, top N, update messages (jobs/jvm DecayedInterests, typed state)
    -> feature-updates topic
No step of it runs in Python.
"""
from __future__ import annotations

from settings.config import Config
from jobs import front
from jobs.keyed import jvm, jvm_keyed_process
from operators.interests import strength_sql
from schemas.features import USER_INTERESTS

JOB_NAME = "interests"
UID = "user-decayed-interests"  # typed JVM state; the Python operator before it was "user-interests"
OPERATOR = "decayed interests per user"  # its metrics: users_created, users_evicted
NEEDS = front.Needs(metadata=True)


def build(cfg: Config, *, input_file: str | None = None, uploads_file: str | None = None,
          restore_from=None) -> front.JobHandle:
    job = front.new_job(cfg, JOB_NAME, input_file, restore_from)
    front.prepare(cfg, job, JOB_NAME, [NEEDS], input_file, uploads_file)
    return front.finish(job, wire(cfg, job))


def wire(cfg: Config, job: front.JobHandle):
    """The family on a prepared front (front.prepare with NEEDS): its feature updates."""
    t_env = job.t_env
    i = cfg.interests
    w = i.weights
    # One row per view; the JVM operator keeps each user's views until the watermark closes their
    # event-time step (`interests.emit_interval`) and applies them sorted: the session and item
    # rules depend on the order of views, which is then the same on every run.
    views = t_env.sql_query(f"""
SELECT user_id, event_time, category, creator_id, {strength_sql(w)} AS strength
FROM {front.ENRICHED_VIEW}""")
    return jvm_keyed_process(t_env, views, interests_function(cfg), front.UPDATE_TYPE, uid=UID, name=OPERATOR)


def interests_function(cfg: Config):
    """The JVM's per-user operator with the configured rules."""
    i = cfg.interests
    return jvm().dev.fyp.ops.DecayedInterests(USER_INTERESTS, i.emit_interval, i.decay, i.top_n, float(i.prune_below),
                                              i.min_events, i.newcomer_ttl, i.idle_ttl, i.forget_after,
                                              cfg.engagement.allowed_lateness)
