"""The Python step of the spike job: per video, per-interval counts -> spike state, feature updates
and state transitions. A thin keyed wrapper around operators.spikes.

One timer per video, always at the latest moment something must happen without input:
- while spiking: the end of the interval by which `calm_intervals` empty intervals would end the
  spike (a video whose views stopped must still return to normal);
- while normal: `idle_ttl` after its newest interval, when its state is dropped (bounded state).
Whether a state has expired is decided by event time (VideoSpikes.expired), not by when the timer
fires, so a replay or a backfill whose watermark jumps gives the same states.
"""
from __future__ import annotations

import orjson
from pyflink.common import Row
from pyflink.common.typeinfo import Types
from pyflink.datastream import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import ValueStateDescriptor

from featurestore.updates import FeatureUpdate, encode_update
from operators.spikes import NORMAL, IntervalCounts, SpikeRules, VideoSpikes
from schemas.features import VIDEO_SPIKES

KIND_UPDATE, KIND_TRANSITION = "update", "transition"
MAX_WATERMARK = 2**63 - 1
OUTPUT_TYPE = Types.ROW_NAMED(["kind", "entity_id", "payload"], [Types.STRING(), Types.STRING(), Types.STRING()])


class VideoSpikesFunction(KeyedProcessFunction):
    """Input rows: (video_id, interval_start, views, regions, shares, skips)."""

    def __init__(self, rules: SpikeRules, idle_ttl_ms: int):
        self.rules, self.idle_ttl = rules, idle_ttl_ms
        self.state = self.timer = None
        self.metrics = {}

    def open(self, runtime_context: RuntimeContext):
        self.state = runtime_context.get_state(ValueStateDescriptor("spikes", Types.PICKLED_BYTE_ARRAY()))
        self.timer = runtime_context.get_state(ValueStateDescriptor("timer", Types.LONG()))
        group = runtime_context.get_metrics_group()
        self.metrics = {name: group.counter(name) for name in ("videos_created", "videos_evicted", "transitions")}

    def process_element(self, row, ctx):
        st = self.state.value()
        if st is not None and st.expired(row[1], self.idle_ttl):
            st = None  # its eviction timer has not fired yet (a watermark jump): same outcome
            self.metrics["videos_evicted"].inc()
        if st is None:
            st = VideoSpikes(self.rules)
            self.metrics["videos_created"].inc()
        transitions = st.feed(IntervalCounts(row[1], row[2], row[3], row[4], row[5]))
        yield from self._emit(ctx.get_current_key(), st, transitions)
        self.state.update(st)
        self._schedule(ctx, st)

    def on_timer(self, timestamp: int, ctx):
        yield from ()
        if timestamp != self.timer.value() or ctx.timer_service().current_watermark() == MAX_WATERMARK:
            # a replaced timer, or the end of a bounded input: the states stay as of its end
            return
        self.timer.clear()
        st = self.state.value()
        if st is None:
            return
        if st.state == NORMAL:
            self.state.clear()
            self.metrics["videos_evicted"].inc()
            return
        transitions = st.idle_until(timestamp + 1)
        yield from self._emit(ctx.get_current_key(), st, transitions)
        self.state.update(st)
        self._schedule(ctx, st)

    def _schedule(self, ctx, st: VideoSpikes) -> None:
        r = self.rules
        if st.state == NORMAL:
            at = st.as_of + self.idle_ttl - 1
        else:
            at = st.as_of + (r.calm_intervals - st.calm) * r.interval_ms - 1
        old = self.timer.value()
        if old == at:
            return
        if old is not None:
            ctx.timer_service().delete_event_time_timer(old)
        ctx.timer_service().register_event_time_timer(at)
        self.timer.update(at)

    def _emit(self, video: str, st: VideoSpikes, transitions: list[dict]):
        update = FeatureUpdate(VIDEO_SPIKES, video, st.as_of, st.absorbed, st.features())
        yield Row(KIND_UPDATE, video, encode_update(update).decode())
        for t in transitions:
            self.metrics["transitions"].inc()
            yield Row(KIND_TRANSITION, video, orjson.dumps({"video_id": video, **t}).decode())
