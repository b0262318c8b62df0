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
import org.apache.flink.streaming.api.TimerService;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;

/**
 * Per user: exponentially decayed interest in categories and creators, with the session and item
 * gap rules of operators/interests.py (its docstring and the docs/features.md, "User interests", state them).
 *
 * <p>Input rows: (user_id, event_time, category, creator_id, strength), one per view (empty category
 * and creator: unknown metadata). A user's views are taken in event-time steps of {@code stepMs}:
 * each waits in the user's state until the watermark closes its step (an event-time timer), and the
 * step's views are then applied sorted, so they count in event-time order and grouped the same way
 * on every run. A view whose step has already closed when it arrives is applied alone at once.
 * Output rows: (user_id, update message), one per step with views and one per view applied alone:
 * {"g": group, "id": user, "t": newest view time, "n": views in the session, "v": [top categories,
 * top creators, views, unenriched views]}. The clean-up timer only frees memory once no view can
 * belong to the session any more; it changes no value.
 *
 * <p>Why the steps are kept here and not by a SQL window: a window had to pack each user's views
 * into one string (LISTAGG, copied at every view) that this operator parsed again; measured, that
 * was a quarter of the CPU of the operator chain after the metadata join.
 */
public class DecayedInterests extends KeyedProcessFunction<String, Row, Row> {
    private static final long NONE = Long.MIN_VALUE;
    private static final String RECORD_SEP = ";";
    private static final String FIELD_SEP = "\\|";

    private final String group;
    private final long stepMs;
    private final double decayMs;
    private final int topN;
    private final double pruneBelow;
    private final long minEvents, newcomerTtlMs, idleTtlMs, forgetAfterMs, allowedLatenessMs;

    private transient ValueState<Session> state;
    private transient Counter usersCreated, usersEvicted;

    public DecayedInterests(String group, long stepMs, long decayMs, int topN, double pruneBelow, long minEvents,
                            long newcomerTtlMs, long idleTtlMs, long forgetAfterMs, long allowedLatenessMs) {
        if (stepMs <= 0) throw new IllegalArgumentException("the step must be positive: " + stepMs);
        this.group = group;
        this.stepMs = stepMs;
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
        public Pending pending = new Pending();  // views whose step has not closed yet
    }

    /** Views waiting for their step to close, in arrival order. A POJO (declared state type). */
    public static class Pending {
        public long[] times = new long[0];
        public String[] categories = new String[0];
        public String[] creators = new String[0];
        public double[] strengths = new double[0];
        public int size;

        void add(long t, String category, String creator, double strength) {
            if (size == times.length) {
                int n = Math.max(4, 2 * size);
                times = Arrays.copyOf(times, n);
                categories = Arrays.copyOf(categories, n);
                creators = Arrays.copyOf(creators, n);
                strengths = Arrays.copyOf(strengths, n);
            }
            times[size] = t;
            categories[size] = category;
            creators[size] = creator;
            strengths[size] = strength;
            size++;
        }

        /** Removes and returns the views with time < end, keeping the rest in order. */
        List<View> takeBefore(long end) {
            List<View> taken = new ArrayList<>();
            int kept = 0;
            for (int i = 0; i < size; i++) {
                if (times[i] < end) {
                    taken.add(new View(times[i], categories[i], creators[i], strengths[i]));
                    continue;
                }
                times[kept] = times[i];
                categories[kept] = categories[i];
                creators[kept] = creators[i];
                strengths[kept] = strengths[i];
                kept++;
            }
            for (int i = kept; i < size; i++) categories[i] = creators[i] = null;
            size = kept;
            return taken;
        }
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
        if (s.pending == null) s.pending = new Pending();  // state of a build without pending views
        long t = (Long) row.getField(1);
        String category = (String) row.getField(2), creator = (String) row.getField(3);
        double strength = ((Number) row.getField(4)).doubleValue();
        long stepClose = t - Math.floorMod(t, stepMs) + stepMs - 1;  // the step's last millisecond
        if (stepClose <= ctx.timerService().currentWatermark()) {  // its step has closed: alone, now
            List<View> one = new ArrayList<>();
            one.add(new View(t, category, creator, strength));
            applyAndEmit(s, one, ctx.getCurrentKey(), ctx.timerService(), out);
        } else {
            s.pending.add(t, category, creator, strength);
            ctx.timerService().registerEventTimeTimer(stepClose);
        }
        state.update(s);
    }

    private void applyAndEmit(Session s, List<View> views, String user, TimerService timers, Collector<Row> out) {
        long sessionsBefore = s.sessions;
        views.sort(ORDER);
        apply(s, views);
        if (s.sessions > sessionsBefore) {  // a new user, or one back after its session's TTL
            usersCreated.inc(s.sessions - sessionsBefore);
            usersEvicted.inc(s.sessions - sessionsBefore - (sessionsBefore == 0 ? 1 : 0));
        }
        if (s.timerAt == NONE) {
            s.timerAt = cleanupAt(s);
            timers.registerEventTimeTimer(s.timerAt);
        }
        out.collect(Row.of(user, message(user, s)));
    }

    /** Applies one step's packed views to the session: the unit tests drive the feature logic
     * with it, without a Flink runtime ("time|category|creator|strength;...", any order). */
    public void apply(Session s, String packed) {
        List<View> views = parse(packed);
        views.sort(ORDER);
        apply(s, views);
    }

    /** Applies views, in the order given (the whole feature logic). */
    private void apply(Session s, List<View> views) {
        for (View v : views) {
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
        if (s.pending != null && s.pending.size > 0) {
            List<View> step = s.pending.takeBefore(timestamp + 1);  // the step that closed at timestamp
            if (!step.isEmpty()) applyAndEmit(s, step, ctx.getCurrentKey(), ctx.timerService(), out);
        }
        if (s.timerAt == NONE || timestamp < s.timerAt) {  // a step's timer, not the clean-up's
            state.update(s);
            return;
        }
        long due = cleanupAt(s);
        if (s.pending != null && s.pending.size > 0) {  // views wait for a later step: its apply re-arms
            s.timerAt = NONE;
            state.update(s);
        } else if (timestamp >= due) {
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

        View(long t, String category, String creator, double strength) {
            this.t = t;
            this.category = category;
            this.creator = creator;
            this.strength = strength;
        }

        View(String[] f) {
            this(Long.parseLong(f[0]), f[1], f[2], Double.parseDouble(f[3]));
        }
    }

    private static final Comparator<View> ORDER = Comparator.<View>comparingLong(v -> v.t)
            .thenComparing(v -> v.category).thenComparing(v -> v.creator).thenComparingDouble(v -> v.strength);

    private static List<View> parse(String packed) {
        List<View> views = new ArrayList<>();
        for (String rec : packed.split(RECORD_SEP)) views.add(new View(rec.split(FIELD_SEP, -1)));
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
