package dev.fyp.ops;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.metrics.Counter;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;

/**
 * Per user: exponentially decayed interest in categories and creators, with the session and item
 * gap rules of operators/interests.py (its docstring and the docs/features.md, "User interests", state them).
 *
 * <p>Input rows: (user_id, packed views), the views of one event-time step as
 * "time|category|creator|strength;..." (empty category and creator: unknown metadata), or one view
 * that was behind the watermark. Output rows: (user_id, update message), one per input row:
 * {"g": group, "id": user, "t": newest view time, "n": views in the session, "v": [top categories,
 * top creators, views, unenriched views]}. The clean-up timer only frees memory once no view can
 * belong to the session any more; it changes no value.
 */
public class DecayedInterests extends KeyedProcessFunction<String, Row, Row> {
    private static final long NONE = Long.MIN_VALUE;
    private static final String RECORD_SEP = ";";
    private static final String FIELD_SEP = "\\|";

    private final String group;
    private final double decayMs;
    private final int topN;
    private final double pruneBelow;
    private final long minEvents, newcomerTtlMs, idleTtlMs, forgetAfterMs, allowedLatenessMs;

    private transient ValueState<Session> state;
    private transient Counter usersCreated, usersEvicted;

    public DecayedInterests(String group, long decayMs, int topN, double pruneBelow, long minEvents,
                            long newcomerTtlMs, long idleTtlMs, long forgetAfterMs, long allowedLatenessMs) {
        this.group = group;
        this.decayMs = decayMs;
        this.topN = topN;
        this.pruneBelow = pruneBelow;
        this.minEvents = minEvents;
        this.newcomerTtlMs = newcomerTtlMs;
        this.idleTtlMs = idleTtlMs;
        this.forgetAfterMs = forgetAfterMs;
        this.allowedLatenessMs = allowedLatenessMs;
    }

    /** Weighted items with the time of their newest view. A POJO (declared state type). */
    public static class Items {
        public String[] keys = new String[0];
        public double[] weights = new double[0];
        public long[] last = new long[0];
        public int size;

        int find(String key) {
            for (int i = 0; i < size; i++) if (keys[i].equals(key)) return i;
            return -1;
        }

        void add(String key, long t, double w, long forgetAfter) {
            int i = find(key);
            if (i < 0) {
                if (size == keys.length) {
                    int n = Math.max(4, 2 * size);
                    keys = Arrays.copyOf(keys, n);
                    weights = Arrays.copyOf(weights, n);
                    last = Arrays.copyOf(last, n);
                }
                i = size++;
                keys[i] = key;
                weights[i] = w;
                last[i] = t;
            } else if (t - last[i] > forgetAfter) {  // the item rule: it starts again
                weights[i] = w;
                last[i] = t;
            } else {
                weights[i] += w;
                if (t > last[i]) last[i] = t;
            }
        }

        void scale(double f) {
            for (int i = 0; i < size; i++) weights[i] *= f;
        }

        /** Drops items whose newest view is more than forgetAfter behind asOf: their next view
         * would restart them anyway, so only memory changes. */
        void forget(long asOf, long forgetAfter) {
            int kept = 0;
            for (int i = 0; i < size; i++) {
                if (asOf - last[i] > forgetAfter) continue;
                keys[kept] = keys[i];
                weights[kept] = weights[i];
                last[kept] = last[i];
                kept++;
            }
            for (int i = kept; i < size; i++) keys[i] = null;
            size = kept;
        }
    }

    /** One user's session. */
    public static class Session {
        public long asOf = -1;  // newest view time; weights are as of it
        public long events;
        public long unenriched;
        public long sessions;  // sessions started by this state (the first one included)
        public long timerAt = NONE;
        public Items categories = new Items();
        public Items creators = new Items();
    }

    @Override
    public void open(OpenContext ctx) {
        state = getRuntimeContext().getState(new ValueStateDescriptor<>("interests", TypeInformation.of(Session.class)));
        usersCreated = getRuntimeContext().getMetricGroup().counter("users_created");
        usersEvicted = getRuntimeContext().getMetricGroup().counter("users_evicted");
    }

    private long sessionTtl(Session s) {
        return s.events >= minEvents ? idleTtlMs : newcomerTtlMs;
    }

    @Override
    public void processElement(Row row, Context ctx, Collector<Row> out) throws Exception {
        Session s = state.value();
        if (s == null) s = new Session();
        long sessionsBefore = s.sessions;
        apply(s, (String) row.getField(1));
        if (s.sessions > sessionsBefore) {  // a new user, or one back after its session's TTL
            usersCreated.inc(s.sessions - sessionsBefore);
            usersEvicted.inc(s.sessions - sessionsBefore - (sessionsBefore == 0 ? 1 : 0));
        }
        if (s.timerAt == NONE) {
            s.timerAt = cleanupAt(s);
            ctx.timerService().registerEventTimeTimer(s.timerAt);
        }
        state.update(s);
        out.collect(Row.of(ctx.getCurrentKey(), message(ctx.getCurrentKey(), s)));
    }

    /** Applies one row's packed views to the session (the whole feature logic; public for the
     * unit tests, which drive it without a Flink runtime). */
    public void apply(Session s, String packed) {
        for (View v : parse(packed)) {
            long t = v.t;
            if (s.asOf < 0 || t - s.asOf > sessionTtl(s)) {  // the session rule: the user starts afresh
                s.asOf = -1;
                s.events = 0;
                s.unenriched = 0;
                s.categories = new Items();
                s.creators = new Items();
                s.sessions++;
            }
            if (t > s.asOf) {
                if (s.asOf >= 0) {
                    double f = Math.exp(-(double) (t - s.asOf) / decayMs);
                    s.categories.scale(f);
                    s.creators.scale(f);
                }
                s.asOf = t;
            }
            s.events++;
            if (v.category.isEmpty()) {
                s.unenriched++;
                continue;
            }
            // a view older than asOf (it came behind the watermark) counts at its own decayed weight
            double w = v.strength * Math.exp(-(double) (s.asOf - t) / decayMs);
            s.categories.add(v.category, t, w, forgetAfterMs);
            s.creators.add(v.creator, t, w, forgetAfterMs);
        }
        s.categories.forget(s.asOf, forgetAfterMs);
        s.creators.forget(s.asOf, forgetAfterMs);
    }

    @Override
    public void onTimer(long timestamp, OnTimerContext ctx, Collector<Row> out) throws Exception {
        Session s = state.value();
        if (s == null) return;
        long due = cleanupAt(s);
        if (timestamp >= due) {
            state.clear();
            usersEvicted.inc();
        } else {  // the session went on since the timer was set: re-arm at its new end
            s.timerAt = due;
            ctx.timerService().registerEventTimeTimer(due);
            state.update(s);
        }
    }

    private long cleanupAt(Session s) {
        return s.asOf + sessionTtl(s) + allowedLatenessMs;
    }

    /** One packed view, parsed once. */
    private static final class View {
        final long t;
        final String category, creator;
        final double strength;

        View(String[] f) {
            t = Long.parseLong(f[0]);
            category = f[1];
            creator = f[2];
            strength = Double.parseDouble(f[3]);
        }
    }

    private static final Comparator<View> ORDER = Comparator.<View>comparingLong(v -> v.t)
            .thenComparing(v -> v.category).thenComparing(v -> v.creator).thenComparingDouble(v -> v.strength);

    /** The step's views in a fixed order (time, category, creator, strength), so the same views
     * give the same floating-point sums however they arrived. */
    private static List<View> parse(String packed) {
        List<View> views = new ArrayList<>();
        for (String rec : packed.split(RECORD_SEP)) views.add(new View(rec.split(FIELD_SEP, -1)));
        views.sort(ORDER);
        return views;
    }

    /** The session's update message (public for the unit tests). */
    public String message(String user, Session s) {
        StringBuilder sb = new StringBuilder(256);
        sb.append("{\"g\":").append(Json.string(group)).append(",\"id\":").append(Json.string(user))
                .append(",\"t\":").append(s.asOf).append(",\"n\":").append(s.events).append(",\"v\":[");
        ranked(sb, s.categories);
        sb.append(',');
        ranked(sb, s.creators);
        return sb.append(',').append(s.events).append(',').append(s.unenriched).append("]}").toString();
    }

    /** [[item, weight], ...]: the top N with |weight| >= prune_below, by weight descending, ties by
     * item ascending. */
    private void ranked(StringBuilder sb, Items items) {
        List<Integer> idx = new ArrayList<>();
        for (int i = 0; i < items.size; i++) if (Math.abs(items.weights[i]) >= pruneBelow) idx.add(i);
        idx.sort((a, b) -> {
            int c = Double.compare(items.weights[b], items.weights[a]);
            return c != 0 ? c : items.keys[a].compareTo(items.keys[b]);
        });
        sb.append('[');
        for (int j = 0; j < Math.min(topN, idx.size()); j++) {
            int i = idx.get(j);
            if (j > 0) sb.append(',');
            sb.append('[').append(Json.string(items.keys[i])).append(',').append(Json.number(items.weights[i])).append(']');
        }
        sb.append(']');
    }
}
