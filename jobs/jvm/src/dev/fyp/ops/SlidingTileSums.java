package dev.fyp.ops;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;

/**
 * Sliding-window sums over time tiles, per entity, exact at tile edges: the generic operator behind
 * every windowed feature group (the group's declaration in Python sets its parameters).
 *
 * <p>Semantics (README, "Window semantics"): time moves in steps of the emit interval E; the as-of
 * time T is the end of the last closed step. A window of length W made of tiles of length C holds
 * the events with event time in [ceil(T / C) * C - W, T). A tile leaves window W at the first step
 * after (j + W / C) * C, by an event-time timer, so an entity's sums change when its own steps close
 * or when one of its tiles falls out.
 *
 * <p>Input rows: (entity_id, tile_start_ms, kind, v_0 .. v_{width-1}) with BIGINT values, v_0 the
 * number of events; kind "T" is the sum of one closed emit step, "C" one event behind the watermark
 * within the allowed lateness (a correction). Output rows: (entity_id, as_of, absorbed,
 * s_{w,i} for every window w and value i), BIGINT, emitted whenever a sum changes.
 *
 * <p>State has declared types (long arrays), so a savepoint restores under a newer build: values
 * appended to a group come back as zero-filled columns. Every sum is an integer, so the order in
 * which tiles are added and removed never changes a value.
 */
public class SlidingTileSums extends KeyedProcessFunction<String, Row, Row> {
    private static final long NONE = Long.MIN_VALUE;
    private static final String KIND_TILE = "T";
    // meta layout: [as_of, absorbed, first tile counted per window...]
    private static final int AS_OF = 0, ABSORBED = 1, FIRST = 2;

    private final long tileMs, emitMs;
    private final long[] windowsMs;
    private final int width, longest;
    private final long endOfInputAsOf;

    private transient ValueState<long[]> metaState;
    private transient ValueState<long[]> sumsState;
    private transient MapState<Long, long[]> tilesState;

    /** endOfInputAsOf: for a bounded input, the as-of time past which the final watermark must not
     * move windows (Long.MIN_VALUE: do not move them at the end at all). */
    public SlidingTileSums(long tileMs, long emitMs, long[] windowsMs, int width, long endOfInputAsOf) {
        if (tileMs % emitMs != 0) throw new IllegalArgumentException("the emit interval must divide the tile");
        int longestAt = 0;
        for (int w = 0; w < windowsMs.length; w++) {
            if (windowsMs[w] % tileMs != 0) throw new IllegalArgumentException("the tile must divide every window");
            if (windowsMs[w] > windowsMs[longestAt]) longestAt = w;
        }
        this.tileMs = tileMs;
        this.emitMs = emitMs;
        this.windowsMs = windowsMs.clone();
        this.width = width;
        this.longest = longestAt;
        this.endOfInputAsOf = endOfInputAsOf;
    }

    @Override
    public void open(OpenContext ctx) {
        metaState = getRuntimeContext().getState(
                new ValueStateDescriptor<>("meta", PrimitiveArrayTypeInfo.LONG_PRIMITIVE_ARRAY_TYPE_INFO));
        sumsState = getRuntimeContext().getState(
                new ValueStateDescriptor<>("sums", PrimitiveArrayTypeInfo.LONG_PRIMITIVE_ARRAY_TYPE_INFO));
        tilesState = getRuntimeContext().getMapState(
                new MapStateDescriptor<>("tiles", Types.LONG, PrimitiveArrayTypeInfo.LONG_PRIMITIVE_ARRAY_TYPE_INFO));
    }

    @Override
    public void processElement(Row row, Context ctx, Collector<Row> out) throws Exception {
        long[] meta = loadMeta();
        long[] sums = loadSums();
        long start = (Long) row.getField(1);
        long asOf;
        if (KIND_TILE.equals(row.getField(2))) {
            asOf = start + emitMs;
        } else {
            // Not the watermark: an as-of time derived from it differs between a run and its replay
            // after a restart, and a replay must never write a version older than one the killed run
            // wrote with fewer events. Tiles the correction's window lost are taken out by timers.
            asOf = Math.max(meta[AS_OF], stepEnd(start));
        }
        long[] vec = new long[width];
        for (int i = 0; i < width; i++) {
            Object v = row.getField(3 + i);
            vec[i] = v == null ? 0L : ((Number) v).longValue();
        }
        long tile = Math.floorDiv(start, tileMs);
        advance(meta, sums, asOf);
        boolean counted = false;
        for (int w = 0; w < windowsMs.length; w++) {
            if (tile >= meta[FIRST + w]) {
                for (int i = 0; i < width; i++) sums[w * width + i] += vec[i];
                counted = true;
            }
        }
        if (counted) {  // else older than every window: ignored
            meta[ABSORBED] += vec[0];
            long[] existing = tilesState.get(tile);
            if (existing == null) {
                tilesState.put(tile, vec);
                for (long windowMs : windowsMs) {
                    ctx.timerService().registerEventTimeTimer((tile + windowMs / tileMs) * tileMs + emitMs - 1);
                }
            } else if (existing.length < width) {  // a tile stored by a build with fewer values
                tilesState.put(tile, widen(existing, vec));
            } else {
                for (int i = 0; i < width; i++) existing[i] += vec[i];
                tilesState.put(tile, existing);
            }
        }
        metaState.update(meta);
        sumsState.update(sums);
        out.collect(update(ctx.getCurrentKey(), meta, sums));
    }

    @Override
    public void onTimer(long timestamp, OnTimerContext ctx, Collector<Row> out) throws Exception {
        if (ctx.timerService().currentWatermark() == Long.MAX_VALUE
                && (endOfInputAsOf == NONE || timestamp >= endOfInputAsOf)) {
            return;  // end of a bounded input: windows stay as of the end of the input, not of +infinity
        }
        long[] meta = metaState.value();
        if (meta == null) return;
        long[] sums = loadSums();
        boolean changed = advance(meta, sums, (timestamp + 1) / emitMs * emitMs);
        if (tilesState.isEmpty()) {
            metaState.clear();
            sumsState.clear();
            tilesState.clear();
        } else {
            metaState.update(meta);
            sumsState.update(sums);
        }
        if (changed) out.collect(update(ctx.getCurrentKey(), meta, sums));
    }

    /** Moves the windows to asOf, subtracting tiles that fell out; a tile that leaves the longest
     * window leaves the state. Returns whether any sum changed. */
    private boolean advance(long[] meta, long[] sums, long asOf) throws Exception {
        if (asOf > meta[AS_OF]) meta[AS_OF] = asOf;
        boolean changed = false;
        for (int w = 0; w < windowsMs.length; w++) {
            long newFirst = Math.floorDiv(meta[AS_OF] + tileMs - 1, tileMs) - windowsMs[w] / tileMs;
            long oldFirst = meta[FIRST + w];
            if (oldFirst == NONE) {
                meta[FIRST + w] = newFirst;
                continue;
            }
            if (newFirst <= oldFirst) continue;
            meta[FIRST + w] = newFirst;
            for (long j : leaving(oldFirst, newFirst)) {
                long[] vec = tilesState.get(j);
                if (vec == null) continue;
                for (int i = 0; i < Math.min(width, vec.length); i++) sums[w * width + i] -= vec[i];
                changed = true;
                if (w == longest) tilesState.remove(j);
            }
        }
        return changed;
    }

    /** Tile indexes in [from, to) that may hold a tile: the range itself when short, else the
     * stored tiles in it (a long idle gap would otherwise walk millions of empty indexes). */
    private List<Long> leaving(long from, long to) throws Exception {
        List<Long> out = new ArrayList<>();
        if (to - from <= 4L * windowsMs[longest] / tileMs) {
            for (long j = from; j < to; j++) out.add(j);
            return out;
        }
        Iterator<Map.Entry<Long, long[]>> it = tilesState.iterator();
        while (it.hasNext()) {
            long j = it.next().getKey();
            if (j >= from && j < to) out.add(j);
        }
        return out;
    }

    private long stepEnd(long t) {
        return (Math.floorDiv(t, emitMs) + 1) * emitMs;
    }

    private long[] loadMeta() throws Exception {
        long[] meta = metaState.value();
        if (meta != null) return meta;
        meta = new long[FIRST + windowsMs.length];
        for (int w = 0; w < windowsMs.length; w++) meta[FIRST + w] = NONE;
        return meta;
    }

    private long[] loadSums() throws Exception {
        long[] sums = sumsState.value();
        if (sums == null) return new long[windowsMs.length * width];
        if (sums.length == windowsMs.length * width) return sums;
        // restored from a build whose group had fewer values: each window's new values start at 0
        int oldWidth = sums.length / windowsMs.length;
        long[] wider = new long[windowsMs.length * width];
        for (int w = 0; w < windowsMs.length; w++) {
            System.arraycopy(sums, w * oldWidth, wider, w * width, Math.min(oldWidth, width));
        }
        return wider;
    }

    private long[] widen(long[] existing, long[] vec) {
        long[] wider = vec.clone();
        for (int i = 0; i < existing.length; i++) wider[i] += existing[i];
        return wider;
    }

    private Row update(String key, long[] meta, long[] sums) {
        Row r = new Row(3 + sums.length);
        r.setField(0, key);
        r.setField(1, meta[AS_OF]);
        r.setField(2, meta[ABSORBED]);
        for (int i = 0; i < sums.length; i++) r.setField(3 + i, sums[i]);
        return r;
    }
}
