"""The Python step of the trends job: per region, minute sums per video -> top K lists with
velocity, re-ranked each minute the watermark closes. A thin keyed wrapper around
operators.trends."""
from __future__ import annotations

from pyflink.common import Row
from pyflink.common.typeinfo import Types
from pyflink.datastream import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import ValueStateDescriptor

from featurestore.updates import FeatureUpdate, encode_update
from operators.trends import MINUTE_MS, RegionTrends, geometry
from schemas.features import REGION_TRENDS

OUTPUT_TYPE = Types.ROW_NAMED(["entity_id", "payload"], [Types.STRING(), Types.STRING()])
MAX_WATERMARK = 2**63 - 1


class RegionTrendsFunction(KeyedProcessFunction):
    """Input rows: (region, video_id, minute_start, score, views). One timer per region, at the
    end of the next minute; when it fires the lists are re-ranked as of the newest closed minute
    (not minute by minute: a watermark that jumps ahead produces one update, not a backlog)."""

    def __init__(self, windows_ms, top_k: int, end_of_input_as_of: int | None = None):
        self.windows_ms = list(windows_ms)
        self.end_of_input_as_of = end_of_input_as_of
        self.top_k = top_k
        self.geo = geometry(windows_ms)
        self.state = None

    def open(self, runtime_context: RuntimeContext):
        self.state = runtime_context.get_state(ValueStateDescriptor("trends", Types.PICKLED_BYTE_ARRAY()))
        self.timer = runtime_context.get_state(ValueStateDescriptor("timer", Types.LONG()))

    def process_element(self, row, ctx):
        yield from ()
        st = self.state.value() or RegionTrends()
        st.add(self.geo, row[1], row[2], row[3], row[4])
        self.state.update(st)
        if self.timer.value() is None:
            at = (row[2] // MINUTE_MS + 1) * MINUTE_MS - 1
            ctx.timer_service().register_event_time_timer(at)
            self.timer.update(at)

    def on_timer(self, timestamp: int, ctx):
        self.timer.clear()
        st = self.state.value()
        if st is None:
            return
        wm = ctx.timer_service().current_watermark()
        if wm == MAX_WATERMARK:
            # End of a bounded input: the lists stay as of the end of its newest minute.
            if self.end_of_input_as_of is None or timestamp >= self.end_of_input_as_of:
                return
            wm = self.end_of_input_as_of - 1
        as_of = (max(wm, timestamp) + 1) // MINUTE_MS * MINUTE_MS
        st.advance(self.geo, as_of)
        lists = [st.top(self.geo, w, self.top_k) for w in self.windows_ms]
        n_videos = len(st.videos)
        if st.videos:
            self.state.update(st)
            nxt = as_of + MINUTE_MS - 1
            ctx.timer_service().register_event_time_timer(nxt)
            self.timer.update(nxt)
        else:
            self.state.clear()
        update = FeatureUpdate(REGION_TRENDS, ctx.get_current_key(), as_of, 0, [*lists, n_videos])
        yield Row(ctx.get_current_key(), encode_update(update).decode())
