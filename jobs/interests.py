"""The interests job: engagement events + video metadata -> per-user decayed interest vectors
over categories and creators (operators/interests.py) -> feature-updates topic.

Graph (one Flink job):
  engagement events (shared front: parse, validate, dead letters)   upload events -> versioned
    -> event-time temporal join with video metadata (category, creator; '' when unknown)
    -> per user, per `interests.emit_interval` of event time (TUMBLE): the step's views packed into
       one row with their strength computed in the JVM; a view already behind the watermark after
       the join goes on alone (a window would drop it)
    -> JVM, keyed by user: sessions, decayed vectors, top N, update messages (jobs/jvm
       DecayedInterests, typed state) -> feature-updates topic
No step of it runs in Python.
"""
from __future__ import annotations

from settings.config import Config
from jobs import front, sql
from jobs.keyed import jvm, jvm_keyed_process
from operators.interests import FIELD_SEP, RECORD_SEP, strength_sql
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
    # Event-time steps, so that a user's views reach Python in event-time order and grouped the
    # same way on every run: the session and item rules depend on that order. A view behind the
    # join's watermark (an out-of-order straggler) would be dropped by the window: it is sent on
    # alone and added where it belongs in the decayed sums. The test is made once per view, on one
    # stream (front.single_stream) that both branches read: two evaluations, each against its own
    # copy of the upstream plan, could send a view down both branches or neither. Behind the
    # watermark here implies not late for the window: the window's watermark never runs ahead.
    wm = "CURRENT_WATERMARK(event_rowtime)"
    flagged = t_env.sql_query(f"""
SELECT user_id, event_rowtime AS view_rowtime,
       CONCAT(CAST(event_time AS STRING), '{FIELD_SEP}', category, '{FIELD_SEP}', creator_id, '{FIELD_SEP}',
              CAST({strength_sql(w)} AS STRING)) AS view_record,
       {wm} IS NOT NULL AND event_rowtime <= {wm} AS behind
FROM {front.ENRICHED_VIEW}""")
    t_env.create_temporary_view("interest_views", front.single_stream(t_env, flagged))
    t_env.execute_sql("CREATE TEMPORARY VIEW interest_views_on_time AS "
                      "SELECT user_id, event_rowtime, view_record FROM interest_views WHERE NOT behind")
    packed = t_env.sql_query(f"""
SELECT user_id, LISTAGG(view_record, '{RECORD_SEP}') AS packed
FROM TABLE(TUMBLE(TABLE interest_views_on_time, DESCRIPTOR(event_rowtime), {sql.interval(i.emit_interval)}))
GROUP BY user_id, window_start, window_end
UNION ALL
SELECT user_id, view_record AS packed FROM interest_views WHERE behind""")
    return jvm_keyed_process(t_env, packed, interests_function(cfg), front.UPDATE_TYPE, uid=UID, name=OPERATOR)


def interests_function(cfg: Config):
    """The JVM's per-user operator with the configured rules."""
    i = cfg.interests
    return jvm().dev.fyp.ops.DecayedInterests(USER_INTERESTS, i.decay, i.top_n, float(i.prune_below), i.min_events,
                                              i.newcomer_ttl, i.idle_ttl, i.forget_after,
                                              cfg.engagement.allowed_lateness)
