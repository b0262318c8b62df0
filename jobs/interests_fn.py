"""The Python step of the interests job: per user, decayed interest vectors over the JVM's
packed views (one row per user and event-time step, or one per view behind the watermark). A thin
keyed wrapper around operators.interests; values never depend on when its timer fires."""
from __future__ import annotations

from pyflink.common import Row
from pyflink.common.typeinfo import Types
from pyflink.datastream import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import ValueStateDescriptor

from featurestore.updates import FeatureUpdate, encode_update
from operators.interests import InterestRules, UserInterests, parse_views
from schemas.features import USER_INTERESTS

OUTPUT_TYPE = Types.ROW_NAMED(["entity_id", "payload"], [Types.STRING(), Types.STRING()])


class UserInterestFunction(KeyedProcessFunction):
    """Input rows: (user_id, packed views). Emits one feature update per row. A session's state is
    dropped by an event-time timer once no view can belong to it any more (operators/interests.py
    cleanup_at): the session rule already decides every value, the timer only frees memory."""

    def __init__(self, rules: InterestRules, allowed_lateness_ms: int):
        self.rules, self.allowed_lateness = rules, allowed_lateness_ms
        self.state = None

    def open(self, runtime_context: RuntimeContext):
        self.state = runtime_context.get_state(ValueStateDescriptor("interests", Types.PICKLED_BYTE_ARRAY()))
        metrics = runtime_context.get_metrics_group()
        self.users_created = metrics.counter("users_created")
        self.users_evicted = metrics.counter("users_evicted")

    def process_element(self, row, ctx):
        st = self.state.value()
        if st is None:
            st = UserInterests()
        sessions = st.sessions
        st.add(parse_views(row[1]), self.rules)
        if st.sessions > sessions:  # a new session (a new user, or one back after its TTL)
            self.users_created.inc(st.sessions - sessions)
            self.users_evicted.inc(st.sessions - sessions - (sessions == 0))
        if st.timer_at is None:
            st.timer_at = st.cleanup_at(self.rules, self.allowed_lateness)
            ctx.timer_service().register_event_time_timer(st.timer_at)
        self.state.update(st)
        update = FeatureUpdate(USER_INTERESTS, row[0], st.as_of, st.events, st.values(self.rules))
        yield Row(row[0], encode_update(update).decode())

    def on_timer(self, timestamp: int, ctx):
        yield from ()  # PyFlink needs a generator here, and clean-up emits nothing
        st = self.state.value()
        if st is None:
            return
        due = st.cleanup_at(self.rules, self.allowed_lateness)
        if timestamp >= due:
            self.state.clear()
            self.users_evicted.inc()
        else:  # the session went on since the timer was set: re-arm at its new end
            st.timer_at = due
            ctx.timer_service().register_event_time_timer(due)
            self.state.update(st)
