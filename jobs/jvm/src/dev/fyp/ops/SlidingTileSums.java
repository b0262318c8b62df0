package dev.fyp.ops;

import java.util.Arrays;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.api.TimerService;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;

/**
 * Sliding-window sums over time tiles, per entity, exact at tile edges: the generic operator behind
 * every windowed feature group (the group's declaration in Python sets its parameters).
 *
 * <p>Semantics (docs/features.md, "Window semantics"): time moves in steps of the emit interval E; the as-of
 * time T is the end of the last closed step. A window of length W made of tiles of length C holds
 * the events with event time in [ceil(T / C) * C - W, T). A tile leaves window W at the first step
 * after (j + W / C) * C, so an entity's sums change when its own steps close or when one of its
 * tiles falls out. An entity holds one event-time timer, at the next instant one of its tiles leaves
 * a window ({@link TileWindows#nextExpiry}), not one per tile and window.
 *
 * <p>Input rows: (entity_id, tile_start_ms, kind, v_0 .. v_{width-1}) with BIGINT values, v_0 the
 * number of events; kind "T" is the sum of one closed emit step, "C" one event behind the watermark
 * within the allowed lateness (a correction). Output rows: (entity_id, update message), whenever a
 * sum changes: {"g": group, "id": entity, "t": as_of, "n": absorbed, "v": "[features of each
 * window]"}, the values array as a JSON string (its text: the writer stores it as it is, without
 * parsing each number; featurestore/updates.py), the features per window as
 * the group declares them (operators/engagement.py FEATURES,
 * compiled into `spec`: "s:i" a window's sum of value i; "r:i,j,..:d:scale:z" the sum of values
 * i, j, .. divided by (the sum of value d, or 1 when d is -1) * scale, correctly rounded, 0.0 when
 * that is 0 or when value z has a sum of 0).
 *
 * <p>State has declared types: one long array per entity ({@link PackedTiles}: the layout it was
 * kept in, meta, sums, the armed timer and the tiles of the longest window, their indexes sorted so
 * that a window that moves reads only the tiles that are there). Because it records its layout, a
 * savepoint restores under another declaration ({@link TileWindows#relayout}: a window added is
 * summed from the stored tiles); state of a build that kept five states per entity is moved into
 * the array on first use. Every sum is an integer, so the order in which tiles are added and
 * removed never changes a value.
 */
public class SlidingTileSums extends KeyedProcessFunction<String, Row, Row> {
    private static final String KIND_TILE = "T";

    private final TileWindows windows;
    private final int width, nWindows;
    private final long endOfInputAsOf;
    private final String group;
    private final int[][] numerators;  // per feature: value indexes summed (one for a plain sum)
    private final int[] denominators, zeroUnless;  // per feature: value index or -1
    private final long[] scales;  // per feature; 0 marks a plain sum

    private transient ValueState<long[]> entityState;
    // the states of a build before PackedTiles, read only to move an entity's state into entityState
    private transient ValueState<long[]> metaState;
    private transient ValueState<long[]> sumsState;
    private transient ValueState<long[]> layoutState;
    private transient MapState<Long, long[]> tilesState;
    private transient ValueState<long[]> indexState;
    private transient PackedTiles tiles;  // the current key's state, set by load
    private final long[] layout;  // windows.layout(), once

    /** endOfInputAsOf: for a bounded input, the as-of time past which the final watermark must not
     * move windows (Long.MIN_VALUE: do not move them at the end at all). */
    public SlidingTileSums(String group, String spec, long tileMs, long emitMs, long[] windowsMs, int width,
                           long endOfInputAsOf) {
        this.windows = new TileWindows(tileMs, emitMs, windowsMs, width);
        this.layout = windows.layout();
        this.width = width;
        this.nWindows = windowsMs.length;
        this.endOfInputAsOf = endOfInputAsOf;
        this.group = group;
        String[] features = spec.split("\\|");
        numerators = new int[features.length][];
        denominators = new int[features.length];
        zeroUnless = new int[features.length];
        scales = new long[features.length];
        for (int f = 0; f < features.length; f++) {
            String[] p = features[f].split(":");
            if (p[0].equals("s")) {
                numerators[f] = new int[] {Integer.parseInt(p[1])};
                denominators[f] = -1;
                zeroUnless[f] = -1;
                scales[f] = 0;
            } else if (p[0].equals("r") && p.length == 5) {
                String[] nums = p[1].split(",");
                numerators[f] = new int[nums.length];
                for (int i = 0; i < nums.length; i++) numerators[f][i] = Integer.parseInt(nums[i]);
                denominators[f] = Integer.parseInt(p[2]);
                scales[f] = Long.parseLong(p[3]);
                zeroUnless[f] = Integer.parseInt(p[4]);
                if (scales[f] <= 0) throw new IllegalArgumentException("a ratio's scale must be positive: " + features[f]);
            } else {
                throw new IllegalArgumentException("not a feature spec: " + features[f]);
            }
            for (int i : numerators[f]) if (i < 0 || i >= width) throw new IllegalArgumentException("no value " + i);
        }
    }

    @Override
    public void open(OpenContext ctx) {
        metaState = getRuntimeContext().getState(
                new ValueStateDescriptor<>("meta", PrimitiveArrayTypeInfo.LONG_PRIMITIVE_ARRAY_TYPE_INFO));
        sumsState = getRuntimeContext().getState(
                new ValueStateDescriptor<>("sums", PrimitiveArrayTypeInfo.LONG_PRIMITIVE_ARRAY_TYPE_INFO));
        layoutState = getRuntimeContext().getState(
                new ValueStateDescriptor<>("layout", PrimitiveArrayTypeInfo.LONG_PRIMITIVE_ARRAY_TYPE_INFO));
        tilesState = getRuntimeContext().getMapState(
                new MapStateDescriptor<>("tiles", Types.LONG, PrimitiveArrayTypeInfo.LONG_PRIMITIVE_ARRAY_TYPE_INFO));
        indexState = getRuntimeContext().getState(
                new ValueStateDescriptor<>("index", PrimitiveArrayTypeInfo.LONG_PRIMITIVE_ARRAY_TYPE_INFO));
        entityState = getRuntimeContext().getState(
                new ValueStateDescriptor<>("entity", PrimitiveArrayTypeInfo.LONG_PRIMITIVE_ARRAY_TYPE_INFO));
    }

    @Override
    public void processElement(Row row, Context ctx, Collector<Row> out) throws Exception {
        long[][] st = load();
        long[] meta = st == null ? windows.newMeta() : st[0];
        long[] sums = st == null ? windows.newSums() : st[1];
        if (st == null) tiles = PackedTiles.fresh(layout, meta, sums);
        long start = (Long) row.getField(1);
        long asOf;
        if (KIND_TILE.equals(row.getField(2))) {
            asOf = windows.stepEnd(start);  // tile rows start on a step
        } else {
            // Not the watermark: an as-of time derived from it differs between a run and its replay
            // after a restart, and a replay must never write a version older than one the killed run
            // wrote with fewer events. Tiles the correction's window lost are taken out by timers.
            asOf = Math.max(meta[TileWindows.AS_OF], windows.stepEnd(start));
        }
        long[] vec = new long[width];
        for (int i = 0; i < width; i++) {
            Object v = row.getField(3 + i);
            vec[i] = v == null ? 0L : ((Number) v).longValue();
        }
        long tile = Math.floorDiv(start, windows.tileMs());
        if (st != null) expireBefore(ctx.getCurrentKey(), meta, sums, asOf, out);
        windows.add(meta, sums, tiles, tile, vec, asOf);
        arm(ctx.timerService(), meta);
        store(meta, sums);
        out.collect(update(ctx.getCurrentKey(), meta, sums));
    }

    @Override
    public void onTimer(long timestamp, OnTimerContext ctx, Collector<Row> out) throws Exception {
        if (ctx.timerService().currentWatermark() == Long.MAX_VALUE
                && (endOfInputAsOf == TileWindows.NONE || timestamp >= endOfInputAsOf)) {
            return;  // end of a bounded input: windows stay as of the end of the input, not of +infinity
        }
        long[][] st = load();
        if (st == null) return;
        long[] meta = st[0], sums = st[1];
        if (tiles.armed() == timestamp) tiles.arm(TileWindows.NONE);  // this one has fired
        boolean changed = windows.advance(meta, sums, tiles, windows.asOfAtWatermark(timestamp));
        if (tiles.isEmpty()) {
            entityState.clear();
        } else {
            arm(ctx.timerService(), meta);
            store(meta, sums);
        }
        if (changed) out.collect(update(ctx.getCurrentKey(), meta, sums));
    }

    /**
     * The updates of the entity's expiries before `asOf`, each as of its own step, as its timer
     * would have made them. Whether that timer fires before a row of a later step arrives depends
     * on how far the watermark moved at once (with the upstream window's rows and the watermark in
     * one jump, the row comes first), so without this the updates between two runs of the same
     * events differ (the stored values at the end do not).
     */
    private void expireBefore(String key, long[] meta, long[] sums, long asOf, Collector<Row> out) throws Exception {
        long armed = tiles.armed();  // at or before the next expiry: most rows need no more than this
        if (armed == TileWindows.NONE || windows.asOfAtWatermark(armed) >= asOf) return;
        for (long at = windows.nextExpiry(meta, tiles); at != TileWindows.NONE; at = windows.nextExpiry(meta, tiles)) {
            long expiryAsOf = windows.asOfAtWatermark(at);
            if (expiryAsOf >= asOf) return;
            if (windows.advance(meta, sums, tiles, expiryAsOf)) out.collect(update(key, meta, sums));
        }
    }

    /** The entity's [meta, sums] in this build's layout (null when it has no state), its tiles in
     * `tiles`. State kept under another feature declaration (a savepoint of an earlier build) is
     * moved over once. */
    private long[][] load() throws Exception {
        long[] packed = entityState.value();
        tiles = packed != null ? PackedTiles.of(packed) : unpacked();
        if (tiles == null) return null;
        tiles = tiles.inLayoutOf(windows, layout);
        return new long[][] {tiles.meta(), tiles.sums()};
    }

    /** The current key's state as a build before PackedTiles kept it (meta, sums, layout, a map of
     * tiles, an index [armed timer, tile indexes]), packed in its own layout and cleared there; null
     * when there is none. Builds before the index registered a timer per tile: those still fire,
     * with nothing to do. */
    private PackedTiles unpacked() throws Exception {
        long[] meta = metaState.value();
        if (meta == null) return null;
        long[] stored = layoutState.value();
        TileWindows.MemoryTiles kept = new TileWindows.MemoryTiles();
        for (java.util.Map.Entry<Long, long[]> tile : tilesState.entries()) kept.put(tile.getKey(), tile.getValue());
        long[] index = indexState.value();
        PackedTiles moved = PackedTiles.withTiles(stored == null ? layout : stored, meta, sumsState.value(),
                index == null ? TileWindows.NONE : index[0], kept);
        metaState.clear();
        sumsState.clear();
        layoutState.clear();
        tilesState.clear();
        indexState.clear();
        return moved;
    }

    /** Makes sure a timer fires at or before the entity's next expiry. A timer armed earlier than
     * that stays: it fires with nothing to do and arms the next one. */
    private void arm(TimerService timers, long[] meta) throws Exception {
        long next = windows.nextExpiry(meta, tiles);
        long armed = tiles.armed();
        if (next != TileWindows.NONE && (armed == TileWindows.NONE || next < armed)) {
            timers.registerEventTimeTimer(next);
            tiles.arm(next);
        }
    }

    private void store(long[] meta, long[] sums) throws Exception {
        tiles.setMeta(meta);
        tiles.setSums(sums);
        entityState.update(tiles.packed());
    }

    private Row update(String key, long[] meta, long[] sums) {
        StringBuilder sb = new StringBuilder(64 + 24 * nWindows * scales.length);
        sb.append("{\"g\":").append(Json.string(group)).append(",\"id\":").append(Json.string(key))
                .append(",\"t\":").append(meta[TileWindows.AS_OF]).append(",\"n\":")
                .append(meta[TileWindows.ABSORBED]).append(",\"v\":\"[");
        int textFrom = 0, textTo = 0;  // the previous window's features in sb
        for (int w = 0; w < nWindows; w++) {
            int base = w * width;
            if (w > 0) sb.append(',');
            // a window whose sums equal the previous one's (every window while an entity's tiles all
            // fit in the shortest, the longer ones for longer) has the same features, formatted once:
            // formatting the ratios was an eighth of this operator's samples (JFR, sparse backfill)
            if (w > 0 && Arrays.equals(sums, base - width, base, sums, base, base + width)) {
                int from = sb.length();
                sb.append(sb, textFrom, textTo);
                textFrom = from;
                textTo = sb.length();
                continue;
            }
            textFrom = sb.length();
            for (int f = 0; f < scales.length; f++) {
                if (f > 0) sb.append(',');
                if (scales[f] == 0) {
                    sb.append(sums[base + numerators[f][0]]);
                    continue;
                }
                long num = 0;
                for (int i : numerators[f]) num += sums[base + i];
                long den = denominators[f] < 0 ? 1 : sums[base + denominators[f]];
                boolean zero = den == 0 || (zeroUnless[f] >= 0 && sums[base + zeroUnless[f]] == 0);
                sb.append(Json.number(zero ? 0.0 : ExactDivision.of(num, den, scales[f])));
            }
            textTo = sb.length();
        }
        return Row.of(key, sb.append("]\"}").toString());
    }
}
