"""The Python step of the engagement job: sliding 1h/6h/24h sums per video over the JVM's tile
sums, emitted as feature updates. A thin keyed wrapper around operators.sliding_tiles."""
from __future__ import annotations

from pyflink.common import Row
from pyflink.common.typeinfo import Types
from pyflink.datastream import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import ValueStateDescriptor

from featurestore.updates import FeatureUpdate, encode_update
from operators.engagement import METRICS, features_from_sums
from operators.sliding_tiles import SlidingTiles, TileGeometry
from schemas.features import VIDEO_ENGAGEMENT

MAX_WATERMARK = 2**63 - 1
OUTPUT_TYPE = Types.ROW_NAMED(["entity_id", "payload"], [Types.STRING(), Types.STRING()])
KIND_TILE = "T"


class SlidingEngagementFunction(KeyedProcessFunction):
    """Input rows: (video_id, tile_start_ms, kind, *METRICS). kind T is the sum of one closed emit
    step; kind C is one late event within the allowed lateness (a correction)."""

    def __init__(self, tile_ms: int, emit_ms: int, windows_ms, end_of_input_as_of: int | None = None):
        self.geo = TileGeometry(tile_ms, emit_ms, tuple(windows_ms))
        self.end_of_input_as_of = end_of_input_as_of
        self.state = None

    def open(self, runtime_context: RuntimeContext):
        self.state = runtime_context.get_state(ValueStateDescriptor("tiles", Types.PICKLED_BYTE_ARRAY()))

    def process_element(self, row, ctx):
        st = self.state.value()
        if st is None:
            st = SlidingTiles(len(METRICS), len(self.geo.windows_ms))
        start = row[1]
        if row[2] == KIND_TILE:
            as_of = start + self.geo.emit_ms
        else:
            # Not the watermark: an as-of time derived from the watermark differs between a run
            # and its replay after a restart, and a replay must never produce a version older
            # than one the killed run already wrote with fewer events (it would lose the write).
            # Tiles the correction's window has meanwhile lost are taken out by their timers.
            as_of = max(st.as_of, self.geo.step_end(start))
        tile = start // self.geo.tile_ms
        if st.add(self.geo, tile, row[3:], as_of):
            for t in self.geo.expiry_times(tile):
                ctx.timer_service().register_event_time_timer(t)
        yield self._emit(row[0], st)

    def on_timer(self, timestamp: int, ctx):
        if ctx.timer_service().current_watermark() == MAX_WATERMARK:
            # End of a bounded input: windows stay as of the end of the input, not of +infinity.
            if self.end_of_input_as_of is None or timestamp >= self.end_of_input_as_of:
                return
        st = self.state.value()
        if st is None:
            return
        if st.advance(self.geo, self.geo.as_of_at_watermark(timestamp)):
            yield self._emit(ctx.get_current_key(), st)
        elif not st.is_empty():
            # advance() moved as_of and window edges in place: persist them, or the cached and
            # the checkpointed state disagree after a cache eviction or a restore.
            self.state.update(st)
        if st.is_empty():
            self.state.clear()

    def _emit(self, video_id: str, st: SlidingTiles) -> Row:
        self.state.update(st)
        update = FeatureUpdate(VIDEO_ENGAGEMENT, video_id, st.as_of, st.absorbed, features_from_sums(st.sums))
        return Row(video_id, encode_update(update).decode())
