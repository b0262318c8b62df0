package dev.fyp.ops;

import java.util.TreeMap;

/**
 * The sliding-window arithmetic of {@link SlidingTileSums}, apart from Flink's state so that it can
 * be tested on its own: per entity, a meta array [as_of, absorbed, first tile counted per window],
 * a sums array (window-major, `width` values per window) and the tiles of the longest window.
 */
public final class TileWindows implements java.io.Serializable {
    private static final long serialVersionUID = 1L;
    public static final long NONE = Long.MIN_VALUE;
    public static final int AS_OF = 0, ABSORBED = 1, FIRST = 2;

    /** Where an entity's tiles live: Flink's state in the job, a TreeMap in the tests. */
    public interface Tiles {
        long[] get(long tile) throws Exception;

        void put(long tile, long[] values) throws Exception;

        void remove(long tile) throws Exception;

        /** Indexes of the stored tiles in [from, to), ascending. */
        long[] indexes(long from, long to) throws Exception;

        /** The lowest stored index at or above `from`, or NONE. */
        long first(long from) throws Exception;
    }

    /** Tiles in memory. */
    public static final class MemoryTiles implements Tiles {
        public final TreeMap<Long, long[]> map = new TreeMap<>();

        public long[] get(long tile) {
            return map.get(tile);
        }

        public void put(long tile, long[] values) {
            map.put(tile, values);
        }

        public void remove(long tile) {
            map.remove(tile);
        }

        public long[] indexes(long from, long to) {
            return map.subMap(from, to).keySet().stream().mapToLong(Long::longValue).toArray();
        }

        public long first(long from) {
            Long j = map.ceilingKey(from);
            return j == null ? NONE : j;
        }
    }

    private final long tileMs, emitMs;
    private final long[] windowsMs;
    private final int width, longest;

    public TileWindows(long tileMs, long emitMs, long[] windowsMs, int width) {
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
    }

    public long tileMs() {
        return tileMs;
    }

    public long[] newMeta() {
        long[] meta = new long[FIRST + windowsMs.length];
        for (int w = 0; w < windowsMs.length; w++) meta[FIRST + w] = NONE;
        return meta;
    }

    public long[] newSums() {
        return new long[windowsMs.length * width];
    }

    /** The layout this instance keeps state in: [width, windows...]. Stored beside the state, so
     * that state written under another declaration is recognised on restore. */
    public long[] layout() {
        long[] out = new long[1 + windowsMs.length];
        out[0] = width;
        System.arraycopy(windowsMs, 0, out, 1, windowsMs.length);
        return out;
    }

    /**
     * State kept under `oldLayout` (another declaration: windows added or removed, values appended)
     * moved to this one, in place of `meta` and `sums` (returned as [meta, sums]). A window both
     * declare keeps its sums; a new window is summed from the stored tiles, exact when it is no
     * longer than the longest window before (older tiles were not kept); a value appended to the
     * group starts at 0. The tiles' expiry in the new windows is {@link #nextExpiry} as always.
     */
    public long[][] relayout(long[] oldLayout, long[] oldMeta, long[] oldSums, Tiles tiles) throws Exception {
        int oldWidth = (int) oldLayout[0];
        long[] oldWindows = java.util.Arrays.copyOfRange(oldLayout, 1, oldLayout.length);
        long[] meta = newMeta();
        long[] sums = newSums();
        meta[AS_OF] = oldMeta[AS_OF];
        meta[ABSORBED] = oldMeta[ABSORBED];
        long[] stored = tiles.indexes(Long.MIN_VALUE, Long.MAX_VALUE);
        for (int w = 0; w < windowsMs.length; w++) {
            int o = -1;
            for (int k = 0; k < oldWindows.length; k++) if (oldWindows[k] == windowsMs[w]) o = k;
            if (o >= 0) {
                meta[FIRST + w] = oldMeta[FIRST + o];
                System.arraycopy(oldSums, o * oldWidth, sums, w * width, Math.min(oldWidth, width));
                continue;
            }
            long first = Math.floorDiv(meta[AS_OF] + tileMs - 1, tileMs) - windowsMs[w] / tileMs;
            meta[FIRST + w] = first;
            for (long j : stored) {
                if (j < first) continue;
                long[] vec = tiles.get(j);
                for (int i = 0; i < Math.min(width, vec.length); i++) sums[w * width + i] += vec[i];
            }
        }
        for (long j : stored) if (j < meta[FIRST + longest]) tiles.remove(j);  // older than every window now
        return new long[][] {meta, sums};
    }

    public long stepEnd(long t) {
        return (Math.floorDiv(t, emitMs) + 1) * emitMs;
    }

    /** The end of the last step a watermark at `timestamp` has closed. */
    public long asOfAtWatermark(long timestamp) {
        return Math.floorDiv(timestamp + 1, emitMs) * emitMs;
    }

    /** The watermark instant at which `tile` leaves window w: the end of the first step after it. */
    private long expiry(long tile, int w) {
        return (tile + windowsMs[w] / tileMs) * tileMs + emitMs - 1;
    }

    /** Watermark instants at which `tile` leaves each window. */
    public long[] expiryTimes(long tile) {
        long[] out = new long[windowsMs.length];
        for (int w = 0; w < windowsMs.length; w++) out[w] = expiry(tile, w);
        return out;
    }

    /**
     * The first watermark instant at which one of the entity's stored tiles leaves a window it is
     * counted in (NONE when no tile is stored): the one event-time timer an entity needs. A timer
     * there, re-registered at each firing, fires at every instant that a timer per tile and window
     * would have fired at with an effect, and nowhere else with one, so the updates are the same.
     */
    public long nextExpiry(long[] meta, Tiles tiles) throws Exception {
        long next = NONE;
        for (int w = 0; w < windowsMs.length; w++) {
            if (meta[FIRST + w] == NONE) continue;
            long j = tiles.first(meta[FIRST + w]);
            if (j == NONE) continue;
            long at = expiry(j, w);
            if (next == NONE || at < next) next = at;
        }
        return next;
    }

    /** Moves the windows to asOf, subtracting tiles that fell out; a tile that leaves the longest
     * window leaves the state. Returns whether any sum changed. */
    public boolean advance(long[] meta, long[] sums, Tiles tiles, long asOf) throws Exception {
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
            for (long j : tiles.indexes(oldFirst, newFirst)) {
                long[] vec = tiles.get(j);
                if (vec == null) continue;
                for (int i = 0; i < Math.min(width, vec.length); i++) sums[w * width + i] -= vec[i];
                changed = true;
                if (w == longest) tiles.remove(j);
            }
        }
        return changed;
    }

    /** Adds `vec` (vec[0]: its number of events) to `tile` after moving to asOf. Returns 1 when
     * the tile is new, 0 when it was known, -1 when the
     * contribution is older than every window (ignored). */
    public int add(long[] meta, long[] sums, Tiles tiles, long tile, long[] vec, long asOf) throws Exception {
        advance(meta, sums, tiles, asOf);
        boolean counted = false;
        for (int w = 0; w < windowsMs.length; w++) {
            if (tile >= meta[FIRST + w]) {
                for (int i = 0; i < width; i++) sums[w * width + i] += vec[i];
                counted = true;
            }
        }
        if (!counted) return -1;
        meta[ABSORBED] += vec[0];
        long[] existing = tiles.get(tile);
        if (existing == null) {
            tiles.put(tile, vec.clone());
            return 1;
        }
        long[] merged = existing.length >= width ? existing : java.util.Arrays.copyOf(existing, width);
        for (int i = 0; i < width; i++) merged[i] += vec[i];
        tiles.put(tile, merged);
        return 0;
    }

}
