package dev.fyp.ops;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.api.TimerService;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;

/**
 * Per partition (a region): the top K items (videos) by score over sliding windows of minute tiles,
 * with each item's views and velocity, re-ranked each time the watermark closes a minute.
 *
 * <p>Semantics (docs/features.md, "Regional trends"): at as-of time T (whole minutes) a window of length W
 * holds the item's tiles in [T - W, T) and the previous window [T - 2W, T - W); velocity is
 * (score - previous score) / (W in hours). The list holds the K items with the highest positive
 * score, ties by item id ascending. Scores are integers of fixed-point units (exact sums).
 *
 * <p>Input rows: (partition, item, minute_start_ms, score_units, views). Output rows: (partition,
 * update message), one per partition and closed minute, in featurestore/updates.py's format:
 * {"g": group, "id": partition, "t": as_of, "n": 0, "v": [list per window..., items tracked]}.
 * One timer per partition, at the end of its next minute.
 *
 * <p>The same events give the same updates on every run, however the watermark moves: a minute is
 * ranked on its own when the watermark has moved past several at once, and a row of a minute the
 * watermark has not closed yet (an upstream subtask ahead of the others sends its rows before the
 * partition's watermark, the minimum over all of them, gets there) is kept but counted only from
 * the ranking of its own minute on. A row of a minute already ranked (a correction) counts at once.
 */
public class TopBySlidingScore extends KeyedProcessFunction<String, Row, Row> {
    static final long MINUTE_MS = 60_000L;
    private static final long NONE = Long.MIN_VALUE;
    private static final long UNITS = 100_000_000_000L;  // operators/exact_sums.py SCALE

    private final long[] reportedMs;  // the windows reported, in output order
    private final long[] windowsMs;   // each reported window and its double, ascending
    private final int[] current, doubled;  // per reported window: its index and its double's in windowsMs
    private final int k, longest;
    private final String group;
    private final long endOfInputAsOf;

    private transient MapState<String, ItemTiles> items;
    private transient ValueState<long[]> meta;  // [as_of, pending timer or NONE]

    public TopBySlidingScore(String group, long[] reportedMs, int k, long endOfInputAsOf) {
        this.group = group;
        this.reportedMs = reportedMs.clone();
        this.windowsMs = Arrays.stream(reportedMs).flatMap(w -> Arrays.stream(new long[] {w, 2 * w}))
                .distinct().sorted().toArray();
        this.current = new int[reportedMs.length];
        this.doubled = new int[reportedMs.length];
        for (int r = 0; r < reportedMs.length; r++) {
            if (reportedMs[r] % MINUTE_MS != 0) throw new IllegalArgumentException("windows must be whole minutes");
            current[r] = Arrays.binarySearch(windowsMs, reportedMs[r]);
            doubled[r] = Arrays.binarySearch(windowsMs, 2 * reportedMs[r]);
        }
        this.longest = windowsMs.length - 1;
        this.k = k;
        this.endOfInputAsOf = endOfInputAsOf;
    }

    /** One item's tiles of the longest window and its score and views per window. A POJO: its
     * state type is declared (Flink's POJO serializer), so fields can be added across upgrades. */
    public static class ItemTiles {
        public long[] first;   // oldest tile counted, per window (NONE before the first advance)
        public long[] score;   // per window
        public long[] views;   // per window
        public long[] tiles;   // tile index, score, views; `size` triples in use
        public int size;
        // tiles below this index are in `score` and `views`, the others wait for their minute's
        // ranking; NONE (the serializer's instance) in state of a build that counted every tile at once
        public long counted = NONE;

        public ItemTiles() {}

        ItemTiles(int windows) {
            first = new long[windows];
            Arrays.fill(first, NONE);
            score = new long[windows];
            views = new long[windows];
            tiles = new long[3 * 4];
            counted = 0;
        }
    }

    @Override
    public void open(OpenContext ctx) {
        items = getRuntimeContext().getMapState(
                new MapStateDescriptor<>("items", Types.STRING, TypeInformation.of(ItemTiles.class)));
        meta = getRuntimeContext().getState(
                new ValueStateDescriptor<>("meta", PrimitiveArrayTypeInfo.LONG_PRIMITIVE_ARRAY_TYPE_INFO));
    }

    @Override
    public void processElement(Row row, Context ctx, Collector<Row> out) throws Exception {
        long[] m = meta.value();
        if (m == null) m = new long[] {0L, NONE};
        String item = (String) row.getField(1);
        long minuteStart = (Long) row.getField(2);
        ItemTiles it = items.get(item);
        if (it == null) it = new ItemTiles(windowsMs.length);
        else if (it.counted == NONE) it.counted = legacyCounted(it, m[0]);
        advance(it, m[0]);
        add(it, Math.floorDiv(minuteStart, MINUTE_MS), ((Number) row.getField(3)).longValue(),
                ((Number) row.getField(4)).longValue());
        items.put(item, it);
        long due = (Math.floorDiv(minuteStart, MINUTE_MS) + 1) * MINUTE_MS - 1;
        // a partition not ranked yet starts with its earliest minute, whichever row came first
        if (m[1] == NONE || (m[0] == 0 && due < m[1])) {
            m[1] = due;
            ctx.timerService().registerEventTimeTimer(m[1]);
        }
        meta.update(m);
    }

    @Override
    public void onTimer(long timestamp, OnTimerContext ctx, Collector<Row> out) throws Exception {
        long[] m = meta.value();
        if (m == null || m[1] != timestamp) return;  // a later first minute, replaced by an earlier one
        m[1] = NONE;
        if (ctx.timerService().currentWatermark() == Long.MAX_VALUE
                && (endOfInputAsOf == NONE || timestamp >= endOfInputAsOf)) {
            meta.update(m);  // end of a bounded input: the lists stay as of the end of its newest minute
            return;
        }
        // the next minute's timer, registered at or behind the watermark, fires in this same advance
        rank(ctx.getCurrentKey(), m, timestamp, ctx.timerService(), out);
    }

    /**
     * Ranks the partition as of the end of the minute whose last millisecond is `due`, emits the
     * update and arms the next minute's timer; when no item is left, clears the partition's state.
     */
    private void rank(String partition, long[] m, long due, TimerService timers, Collector<Row> out)
            throws Exception {
        m[0] = Math.max(m[0], (due + 1) / MINUTE_MS * MINUTE_MS);
        List<List<Object[]>> ranked = new ArrayList<>();
        for (int r = 0; r < reportedMs.length; r++) ranked.add(new ArrayList<>());
        int tracked = 0;
        Iterator<Map.Entry<String, ItemTiles>> entries = items.iterator();
        List<String> gone = new ArrayList<>();
        boolean live = false;
        while (entries.hasNext()) {
            Map.Entry<String, ItemTiles> e = entries.next();
            ItemTiles it = e.getValue();
            if (it.counted == NONE) it.counted = legacyCounted(it, m[0]);
            advance(it, m[0]);
            if (it.size == 0) {
                gone.add(e.getKey());
                continue;
            }
            items.put(e.getKey(), it);
            live = true;
            if (!hasCounted(it)) continue;  // only tiles of minutes after this one: not tracked yet
            tracked++;
            for (int r = 0; r < reportedMs.length; r++) {
                long s = it.score[current[r]];
                if (s > 0) offer(ranked.get(r), new Object[] {s, e.getKey(), it.views[current[r]], it.score[doubled[r]] - s});
            }
        }
        for (String g : gone) items.remove(g);
        out.collect(Row.of(partition, message(partition, m[0], ranked, tracked)));
        if (!live) {
            items.clear();
            meta.clear();
            return;
        }
        m[1] = m[0] + MINUTE_MS - 1;
        timers.registerEventTimeTimer(m[1]);
        meta.update(m);
    }

    /** Keeps the best k of (score desc, item asc), sorted. */
    private void offer(List<Object[]> top, Object[] entry) {
        int i = top.size();
        while (i > 0 && better(entry, top.get(i - 1))) i--;
        if (i >= k) return;
        top.add(i, entry);
        if (top.size() > k) top.remove(top.size() - 1);
    }

    private static boolean better(Object[] a, Object[] b) {
        long sa = (Long) a[0], sb = (Long) b[0];
        if (sa != sb) return sa > sb;
        return ((String) a[1]).compareTo((String) b[1]) < 0;
    }

    private String message(String partition, long asOf, List<List<Object[]>> ranked, int tracked) {
        StringBuilder sb = new StringBuilder(256);
        sb.append("{\"g\":").append(Json.string(group)).append(",\"id\":").append(Json.string(partition))
                .append(",\"t\":").append(asOf).append(",\"n\":0,\"v\":[");
        for (int r = 0; r < reportedMs.length; r++) {
            double hours = reportedMs[r] / 3_600_000.0;
            sb.append('[');
            List<Object[]> top = ranked.get(r);
            for (int i = 0; i < top.size(); i++) {
                Object[] e = top.get(i);
                long s = (Long) e[0], prev = (Long) e[3];
                if (i > 0) sb.append(',');
                sb.append("{\"video\":").append(Json.string((String) e[1]))
                        .append(",\"score\":").append(Json.number(units(s)))
                        .append(",\"views\":").append((long) (Long) e[2])
                        .append(",\"velocity\":").append(Json.number(units(s - prev) / hours)).append('}');
            }
            sb.append("],");
        }
        return sb.append(tracked).append("]}").toString();
    }

    /** units / 1e11, correctly rounded (as Python's integer true division). */
    private static double units(long u) {
        return ExactDivision.of(u, 1, UNITS);
    }

    /** State of a build before `counted`: every stored tile was in the sums. */
    private static long legacyCounted(ItemTiles it, long asOf) {
        long upTo = Math.floorDiv(asOf, MINUTE_MS);
        for (int t = 0; t < it.size; t++) upTo = Math.max(upTo, it.tiles[3 * t] + 1);
        return upTo;
    }

    /** Moves the item's windows to asOf (a whole minute): counted tiles that fell out are subtracted,
     * waiting tiles of minutes before asOf are added; a tile that leaves the longest window leaves
     * the state. */
    private void advance(ItemTiles it, long asOf) {
        for (int w = 0; w < windowsMs.length; w++) {
            long newFirst = Math.floorDiv(asOf + MINUTE_MS - 1, MINUTE_MS) - windowsMs[w] / MINUTE_MS;
            if (it.first[w] == NONE || newFirst <= it.first[w]) {
                if (it.first[w] == NONE) it.first[w] = newFirst;
                continue;
            }
            long oldFirst = it.first[w];
            it.first[w] = newFirst;
            for (int t = 0; t < it.size; t++) {
                long j = it.tiles[3 * t];
                if (j >= oldFirst && j < newFirst && j < it.counted) {
                    it.score[w] -= it.tiles[3 * t + 1];
                    it.views[w] -= it.tiles[3 * t + 2];
                }
            }
        }
        long upTo = Math.floorDiv(asOf, MINUTE_MS);
        if (upTo > it.counted) {
            for (int t = 0; t < it.size; t++) {
                long j = it.tiles[3 * t];
                if (j >= it.counted && j < upTo) count(it, j, it.tiles[3 * t + 1], it.tiles[3 * t + 2]);
            }
            it.counted = upTo;
        }
        // tiles that left the longest window leave the state
        int kept = 0;
        for (int t = 0; t < it.size; t++) {
            if (it.tiles[3 * t] >= it.first[longest]) {
                System.arraycopy(it.tiles, 3 * t, it.tiles, 3 * kept, 3);
                kept++;
            }
        }
        it.size = kept;
    }

    /** Adds a tile's score and views to every window it is in. Returns whether it is in any. */
    private boolean count(ItemTiles it, long tile, long score, long views) {
        boolean counted = false;
        for (int w = 0; w < windowsMs.length; w++) {
            if (tile >= it.first[w]) {
                it.score[w] += score;
                it.views[w] += views;
                counted = true;
            }
        }
        return counted;
    }

    /** A row of `tile`: counted now when its minute has been ranked, else kept until it is. */
    private void add(ItemTiles it, long tile, long score, long views) {
        if (tile < it.counted && !count(it, tile, score, views)) return;  // older than every window
        for (int t = 0; t < it.size; t++) {
            if (it.tiles[3 * t] == tile) {
                it.tiles[3 * t + 1] += score;
                it.tiles[3 * t + 2] += views;
                return;
            }
        }
        if (3 * (it.size + 1) > it.tiles.length) it.tiles = Arrays.copyOf(it.tiles, it.tiles.length * 2);
        it.tiles[3 * it.size] = tile;
        it.tiles[3 * it.size + 1] = score;
        it.tiles[3 * it.size + 2] = views;
        it.size++;
    }

    private static boolean hasCounted(ItemTiles it) {
        for (int t = 0; t < it.size; t++) if (it.tiles[3 * t] < it.counted) return true;
        return false;
    }
}
