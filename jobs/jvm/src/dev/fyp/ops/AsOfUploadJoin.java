package dev.fyp.ops;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.functions.co.KeyedCoProcessFunction;
import org.apache.flink.streaming.api.operators.co.KeyedCoProcessOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.watermarkstatus.WatermarkStatus;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.utils.JoinedRowData;
import org.apache.flink.table.data.utils.ProjectedRowData;
import org.apache.flink.table.runtime.typeutils.InternalTypeInfo;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.RowType;
import org.apache.flink.util.Collector;

/**
 * Each view with its video's upload metadata as of the view's event time: the upload with the
 * newest upload time at or before the view's time (of two uploads with the same time, the one that
 * came last), or nulls when there is none.
 *
 * <p>Input 1, views: (…, key, …, time BIGINT epoch ms, …), Flink's internal rows. Input 2, uploads:
 * (key, version time BIGINT, appended fields…). Output: the view's fields followed by the upload's
 * appended fields. Both inputs are keyed by the key (a string).
 *
 * <p>When a view is emitted: once every upload at or before its time has arrived, so the answer
 * never depends on how fast either input is read. That is known when the uploads' own watermark
 * has reached the view's time (always, once a bounded uploads input has ended): the view leaves at
 * once, with no state and no timer, after the views of its video still waiting if the uploads'
 * watermark has passed them all too (views of a video leave in the order they came). Otherwise it
 * waits for a timer at the oldest waiting view's time, which fires when the watermark (the smaller
 * of both inputs') has passed it, and lets go every waiting view the uploads' watermark has passed.
 * WHY the first rule looks at the waiting views: without it a busy video, once it had views waiting,
 * kept some waiting for ever (new ones came before the watermark passed the last), and each
 * firing copied all that still waited: in a backfill of every family, where the views of the first
 * seconds wait for the uploads file, those copies were a quarter of the join's CPU samples. These
 * are the rules of Flink's event-time temporal join (TemporalRowTimeJoinOperator: one timer per key
 * at its oldest waiting view, versions pruned up to the newest one the watermark has passed), at a
 * fraction of its cost per view: it kept each view as a map entry beside two value states and copied
 * and sorted the versions at every firing. One difference: behind Flink's join, the keep-last
 * deduplication that made the uploads a versioned table dropped an upload older than one already
 * seen; here it is a version like any other.
 */
public class AsOfUploadJoin extends KeyedCoProcessFunction<String, RowData, RowData, RowData> {
    private final InternalTypeInfo<RowData> viewType, uploadType;
    private final int viewTime, versionTime;
    private final int[] appended;

    private transient ListState<RowData> waiting;  // views whose time the watermark has not passed, in arrival order
    private transient ValueState<Long> armed;  // the key's one event-time timer: its oldest waiting view
    private transient ValueState<Long> newestWaiting;  // the newest time of a waiting view
    private transient MapState<Long, RowData> versions;  // version time -> upload
    private transient JoinedRowData out;
    private transient ProjectedRowData known;
    private transient RowData unknown;
    private transient long uploadsWatermark;  // the uploads input's own watermark (UploadsWatermark)

    /**
     * @param viewTime index of the views' event time (BIGINT ms)
     * @param versionTime index of the uploads' version time (BIGINT ms)
     * @param appended indexes of the upload fields appended to each view
     */
    public AsOfUploadJoin(InternalTypeInfo<RowData> viewType, InternalTypeInfo<RowData> uploadType, int viewTime,
                          int versionTime, int[] appended) {
        this.viewType = viewType;
        this.uploadType = uploadType;
        this.viewTime = viewTime;
        this.versionTime = versionTime;
        this.appended = appended.clone();
    }

    /**
     * Views joined with uploads, both keyed by a string field; the output's type is the view's
     * fields followed by the appended upload fields, with their names.
     */
    public static SingleOutputStreamOperator<RowData> join(DataStream<RowData> views, int viewKey, int viewTime,
                                                           DataStream<RowData> uploads, int uploadKey, int versionTime,
                                                           int[] appended, String uid, String name) {
        InternalTypeInfo<RowData> viewType = internal(views), uploadType = internal(uploads);
        RowType v = viewType.toRowType(), u = uploadType.toRowType();
        List<RowType.RowField> fields = new ArrayList<>(v.getFields());
        for (int i : appended) {
            RowType.RowField f = u.getFields().get(i);
            fields.add(new RowType.RowField(f.getName(), f.getType().copy(true)));  // null without a version
        }
        InternalTypeInfo<RowData> outType = InternalTypeInfo.of(new RowType(fields));
        return views.connect(uploads)
                .keyBy(new StringField(viewKey), new StringField(uploadKey), Types.STRING)
                .transform(name, outType,
                        new UploadsWatermark(new AsOfUploadJoin(viewType, uploadType, viewTime, versionTime, appended)))
                .uid(uid);
    }

    private static InternalTypeInfo<RowData> internal(DataStream<RowData> stream) {
        // a table's rows as RowData (jobs/keyed.py internal_rows) carry their row type as a DataType
        LogicalType t = ((org.apache.flink.table.types.DataTypeQueryable) stream.getType()).getDataType().getLogicalType();
        return InternalTypeInfo.of((RowType) t);
    }

    @Override
    public void open(OpenContext context) {
        waiting = getRuntimeContext().getListState(new ListStateDescriptor<>("waiting views", viewType));
        armed = getRuntimeContext().getState(new ValueStateDescriptor<>("armed timer", Types.LONG));
        // added after the first release: a savepoint without it restores it empty (see newestWaiting())
        newestWaiting = getRuntimeContext().getState(new ValueStateDescriptor<>("newest waiting view", Types.LONG));
        versions = getRuntimeContext().getMapState(new MapStateDescriptor<>("upload versions", Types.LONG, uploadType));
        out = new JoinedRowData();
        known = ProjectedRowData.from(appended);
        unknown = new GenericRowData(appended.length);
        uploadsWatermark = Long.MIN_VALUE;
    }

    @Override
    public void processElement1(RowData view, Context ctx, Collector<RowData> collector) throws Exception {
        long t = view.getLong(viewTime);
        Long at = armed.value();
        if (t <= uploadsWatermark) {
            if (at == null) {
                emit(view, collector);
                return;
            }
            if (newestWaiting() <= uploadsWatermark) {  // the waiting ones can go too, first
                for (RowData waitingView : waiting.get()) emit(waitingView, collector);
                waiting.clear();
                ctx.timerService().deleteEventTimeTimer(at);
                armed.clear();
                newestWaiting.clear();
                emit(view, collector);
                return;
            }
        }
        waiting.add(view);
        if (at == null || t > newestWaiting()) newestWaiting.update(t);
        if (at == null || t < at) {
            if (at != null) ctx.timerService().deleteEventTimeTimer(at);
            ctx.timerService().registerEventTimeTimer(t);
            armed.update(t);
        }
    }

    /** The newest time of the key's waiting views (state of a savepoint from before this value was
     * kept: found by a look through them, once). */
    private long newestWaiting() throws Exception {
        Long newest = newestWaiting.value();
        if (newest == null) {
            long n = Long.MIN_VALUE;
            for (RowData view : waiting.get()) n = Math.max(n, view.getLong(viewTime));
            newestWaiting.update(n);
            return n;
        }
        return newest;
    }

    @Override
    public void processElement2(RowData upload, Context ctx, Collector<RowData> collector) throws Exception {
        // a view at or after this time waits for the watermark to pass it, so it sees this upload
        versions.put(upload.getLong(versionTime), upload);
    }

    /** The view with the newest version at or before its time, now: every such upload has arrived. */
    private void emit(RowData view, Collector<RowData> collector) throws Exception {
        long t = view.getLong(viewTime), best = Long.MIN_VALUE;
        RowData upload = null;
        for (java.util.Map.Entry<Long, RowData> e : versions.entries()) {
            long v = e.getKey();
            if (v <= t && (upload == null || v > best)) {
                best = v;
                upload = e.getValue();
            }
        }
        out.replace(view, upload == null ? unknown : known.replaceRow(upload));
        collector.collect(out);
    }

    @Override
    public void onTimer(long timestamp, OnTimerContext ctx, Collector<RowData> collector) throws Exception {
        long watermark = ctx.timerService().currentWatermark();
        // the uploads' own watermark is at or past the timer's (the smaller of both inputs')
        long released = Math.max(watermark, uploadsWatermark);
        long[] times = versionTimes();
        RowData[] uploads = new RowData[times.length];
        for (int i = 0; i < times.length; i++) uploads[i] = versions.get(times[i]);
        List<RowData> rest = null;
        long next = Long.MAX_VALUE;
        for (RowData view : waiting.get()) {
            long t = view.getLong(viewTime);
            if (t <= released) {
                int v = latestAtOrBefore(times, t);
                out.replace(view, v < 0 ? unknown : known.replaceRow(uploads[v]));
                collector.collect(out);
            } else {
                if (rest == null) rest = new ArrayList<>();
                rest.add(view);
                next = Math.min(next, t);
            }
        }
        if (rest == null) {
            waiting.clear();
            newestWaiting.clear();
        } else {
            waiting.update(rest);  // the newest waiting view is among them
        }
        // versions older than the newest one the watermark has passed can serve no view any more
        // that is not already late (and a late view then gets that newest version, as in Flink)
        int keep = latestAtOrBefore(times, watermark);
        for (int i = 0; i < keep; i++) versions.remove(times[i]);
        if (next == Long.MAX_VALUE) {
            armed.clear();
        } else {
            ctx.timerService().registerEventTimeTimer(next);
            armed.update(next);
        }
    }

    private long[] versionTimes() throws Exception {
        long[] times = new long[4];
        int n = 0;
        for (Long t : versions.keys()) {
            if (n == times.length) times = Arrays.copyOf(times, 2 * n);
            times[n++] = t;
        }
        times = Arrays.copyOf(times, n);
        Arrays.sort(times);
        return times;
    }

    /** Index of the newest time at or before t in ascending times; -1 if none. */
    static int latestAtOrBefore(long[] times, long t) {
        int lo = 0, hi = times.length - 1, found = -1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (times[mid] <= t) {
                found = mid;
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        return found;
    }

    /**
     * The join's operator: Flink's, which also tells the function the uploads input's own
     * watermark (a two-input operator sees each input's; the function only their minimum), and
     * which moves on to the views' watermark when both inputs have gone idle.
     *
     * <p>WHY the last: the uploads count as idle after `enrichment.metadata_wait` without one, and
     * with `flink.source_idle_timeout` a silent engagement stream goes idle too, often first. Flink
     * then keeps the smaller watermark of the two inputs, the uploads' old one, for as long as both
     * stay idle, and the views waiting for it stayed until the next event (the spike family took
     * in nothing in 180 s of test_restart_watermark). With the uploads idle, views stop waiting for
     * them: the order in which the two inputs went idle must not matter. Flink's own rule within
     * one input is the same: when every channel is idle, the largest watermark among them goes on.
     */
    static class UploadsWatermark extends KeyedCoProcessOperator<String, RowData, RowData, RowData> {
        // set in open(): the operator reaches the task serialized, without its transient fields
        private transient long viewsWatermark;
        private transient long processed;  // the highest watermark this operator went to
        private transient boolean viewsIdle, uploadsIdle;

        UploadsWatermark(AsOfUploadJoin join) {
            super(join);
        }

        @Override
        public void open() throws Exception {
            super.open();
            viewsWatermark = processed = Long.MIN_VALUE;
            viewsIdle = uploadsIdle = false;
        }

        @Override
        public void processWatermark1(Watermark mark) throws Exception {
            viewsWatermark = Math.max(viewsWatermark, mark.getTimestamp());
            super.processWatermark1(mark);
        }

        @Override
        public void processWatermark2(Watermark mark) throws Exception {
            AsOfUploadJoin join = (AsOfUploadJoin) userFunction;
            join.uploadsWatermark = Math.max(join.uploadsWatermark, mark.getTimestamp());
            super.processWatermark2(mark);
        }

        @Override
        public void processWatermark(Watermark mark) throws Exception {
            // after a move to the views' watermark, the inputs' minimum catches up from below
            if (mark.getTimestamp() <= processed) return;
            processed = mark.getTimestamp();
            super.processWatermark(mark);
        }

        @Override
        protected void processWatermarkStatus(WatermarkStatus status, int index) throws Exception {
            if (index == 0) viewsIdle = status.isIdle();
            else uploadsIdle = status.isIdle();
            if (viewsIdle && uploadsIdle && viewsWatermark > processed) {
                processWatermark(new Watermark(viewsWatermark));  // before the idle status goes downstream
            }
            super.processWatermarkStatus(status, index);
        }
    }

    /** Keys an internal row by one of its string fields. */
    public static class StringField implements KeySelector<RowData, String> {
        private final int index;

        public StringField(int index) {
            this.index = index;
        }

        @Override
        public String getKey(RowData row) {
            return row.getString(index).toString();
        }
    }
}
