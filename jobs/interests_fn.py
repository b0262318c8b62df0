"""The Python step of the interests job: per user, decayed interest vectors over the JVM's
per-batch packed views. A thin keyed wrapper around operators.interests."""
from __future__ import annotations

from pyflink.common import Row
from pyflink.common.typeinfo import Types
from pyflink.datastream import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import ValueStateDescriptor

from featurestore.updates import FeatureUpdate, encode_update
from operators.interests import UserInterests, parse_views, top_n
from schemas.features import USER_INTERESTS

OUTPUT_TYPE = Types.ROW_NAMED(["entity_id", "payload"], [Types.STRING(), Types.STRING()])


class UserInterestFunction(KeyedProcessFunction):
    """Input rows: (user_id, packed views). Emits one feature update per row; evicts a user's
    state by event-time timer (newcomer_ttl below min_events views, idle_ttl otherwise)."""

    def __init__(self, decay_ms: int, top_n: int, prune_below: float, min_events: int,
                 newcomer_ttl_ms: int, idle_ttl_ms: int):
        self.decay_ms, self.top_n, self.prune_below = decay_ms, top_n, prune_below
        self.min_events, self.newcomer_ttl_ms, self.idle_ttl_ms = min_events, newcomer_ttl_ms, idle_ttl_ms
        self.state = None

    def open(self, runtime_context: RuntimeContext):
        self.state = runtime_context.get_state(ValueStateDescriptor("interests", Types.PICKLED_BYTE_ARRAY()))
        metrics = runtime_context.get_metrics_group()
        self.users_created = metrics.counter("users_created")
        self.users_evicted = metrics.counter("users_evicted")

    def _expiry(self, st: UserInterests) -> int:
        return st.expires_at(self.min_events, self.newcomer_ttl_ms, self.idle_ttl_ms)

    def process_element(self, row, ctx):
        st = self.state.value()
        if st is None:
            st = UserInterests()
            self.users_created.inc()
        st.add(parse_views(row[1]), self.decay_ms, self.prune_below)
        if st.timer_at is None:
            st.timer_at = self._expiry(st)
            ctx.timer_service().register_event_time_timer(st.timer_at)
        self.state.update(st)
        update = FeatureUpdate(USER_INTERESTS, row[0], st.as_of, st.events, [
            top_n(st.categories, self.top_n), top_n(st.creators, self.top_n), st.events, st.unenriched])
        yield Row(row[0], encode_update(update).decode())

    def on_timer(self, timestamp: int, ctx):
        yield from ()  # PyFlink needs a generator here, and eviction emits nothing
        st = self.state.value()
        if st is None:
            return
        expiry = self._expiry(st)
        if timestamp >= expiry:
            self.state.clear()
            self.users_evicted.inc()
        else:  # the user was active since the timer was set: re-arm at the new expiry
            st.timer_at = expiry
            ctx.timer_service().register_event_time_timer(expiry)
            self.state.update(st)
