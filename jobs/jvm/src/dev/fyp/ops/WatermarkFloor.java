package dev.fyp.ops;

import java.util.List;

import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.runtime.state.StateSnapshotContext;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.runtime.watermarkstatus.WatermarkStatus;

/**
 * Passes records on as they are, and a watermark that never falls below a floor: after a restore,
 * the lowest watermark its active subtasks had sent on when the checkpoint was taken.
 *
 * <p>Why: Flink's window aggregations (the SQL TUMBLE of every family) keep their watermark in
 * their state and drop, without a trace, a record whose window ended at or before it. A restarted
 * source derives its watermark from nothing again: until its first watermark, and while the events
 * after the checkpoint run behind the ones before it, the front would route a view behind the
 * restored watermark into a window that has already closed, instead of applying it as a
 * correction. A window's watermark is the lowest of its active inputs', each at most what this
 * operator sent on, or, once every input is idle, the highest any of them had sent (Flink's rule
 * within an input); so after a restore it starts from the lowest its active subtasks had sent on,
 * or the highest, when all were idle (union state, {@link #toSave}, {@link #restoredFloor}): at
 * least the watermark any window behind it restored.
 */
public final class WatermarkFloor<T> extends AbstractStreamOperator<T> implements OneInputStreamOperator<T, T> {
    private static final ListStateDescriptor<Long> SENT = new ListStateDescriptor<>("watermark sent on", Types.LONG);
    // by subtasks whose input was idle (added later: a checkpoint without it restores it empty)
    private static final ListStateDescriptor<Long> SENT_IDLE =
            new ListStateDescriptor<>("watermark sent on, then idle", Types.LONG);

    private transient ListState<Long> sentState, sentIdleState;
    private transient long sent;  // the highest watermark sent on (the restored floor at first)
    private transient boolean floorPending;  // the restored floor is yet to be sent on
    private transient boolean idle;  // the input's last watermark status

    /** `in` through a WatermarkFloor (chained to it: an operator factory's default). */
    public static <T> SingleOutputStreamOperator<T> of(DataStream<T> in, String uid, String name) {
        return in.transform(name, in.getType(), new WatermarkFloor<T>()).uid(uid);
    }

    @Override
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        sentState = context.getOperatorStateStore().getUnionListState(SENT);
        sentIdleState = context.getOperatorStateStore().getUnionListState(SENT_IDLE);
        sent = restoredFloor(sentState.get(), sentIdleState.get());
        floorPending = sent != Long.MIN_VALUE;
    }

    /**
     * The floor after a restore, as a window behind the subtasks computes its watermark: the lowest
     * watermark the active subtasks had sent on (Long.MIN_VALUE, no floor, when one of them had
     * sent none); with none active, the highest an idle one had sent (WHY: a stream that fell
     * silent goes idle in every subtask, and the windows went on to the highest; with no floor a
     * view behind it after a restore went into a closed window and was lost).
     */
    public static long restoredFloor(Iterable<Long> active, Iterable<Long> idle) {
        long lowest = Long.MAX_VALUE;
        boolean any = false;
        for (Long w : active) {
            lowest = Math.min(lowest, w);
            any = true;
        }
        if (any) return lowest;
        long highest = Long.MIN_VALUE;
        for (Long w : idle) highest = Math.max(highest, w);
        return highest;
    }

    /** What a subtask saves for the active ones: the watermark it has sent on, nothing while its
     * input is idle (a source subtask with no partition to read, or a silent stream). */
    public static List<Long> toSave(long sent, boolean idle) {
        return idle ? List.of() : List.of(sent);
    }

    /** What a subtask saves for the idle ones: the watermark it had sent on before it went idle,
     * if any. */
    public static List<Long> toSaveIdle(long sent, boolean idle) {
        return idle && sent != Long.MIN_VALUE ? List.of(sent) : List.of();
    }

    @Override
    public void snapshotState(StateSnapshotContext context) throws Exception {
        super.snapshotState(context);
        sentState.update(toSave(sent, idle));
        sentIdleState.update(toSaveIdle(sent, idle));
    }

    @Override
    public void processWatermarkStatus(WatermarkStatus status) throws Exception {
        idle = status.isIdle();
        super.processWatermarkStatus(status);
    }

    @Override
    public void processElement(StreamRecord<T> element) {
        if (floorPending) sendFloor();
        output.collect(element);
    }

    @Override
    public void processWatermark(Watermark mark) {
        if (mark.getTimestamp() > sent) {
            sent = mark.getTimestamp();
            floorPending = false;
            output.emitWatermark(mark);
        } else if (floorPending) {
            sendFloor();
        }
    }

    private void sendFloor() {
        floorPending = false;
        output.emitWatermark(new Watermark(sent));
    }
}
