package dev.fyp.ops;

import java.util.Arrays;

/**
 * One entity's sliding-window state packed into a single long array: what {@link SlidingTileSums}
 * keeps as one value per key. WHY one array: each keyed-state access is a hash lookup of the key
 * in a per-state table, and five states (meta, sums, layout, timer and tile index, a map of tiles)
 * cost about ten lookups per input row, a third of the operator's time in a sparse backfill (JFR).
 * One array is one lookup to read and one to write back.
 *
 * <p>Layout: [L, layout (L longs: width, windows...), meta, sums, armed timer, n, n tile indexes
 * ascending, n * width tile values]. The layout comes first so that state kept under another
 * declaration is recognised ({@link #layout}) and moved over ({@link TileWindows#relayout}).
 * Tiles are read and written in place; a tile added or removed copies the array (at most twice per
 * tile length and entity: an entity's row of a step within a known tile changes no length).
 */
public final class PackedTiles implements TileWindows.Tiles {
    private long[] p;
    private final int width, metaAt, sumsAt, armedAt, countAt, indexAt;
    private final int metaLength, sumsLength;
    private int n;

    private PackedTiles(long[] packed) {
        p = packed;
        int layoutLength = (int) packed[0];
        width = (int) packed[1];
        int windows = layoutLength - 1;
        metaAt = 1 + layoutLength;
        metaLength = TileWindows.FIRST + windows;
        sumsAt = metaAt + metaLength;
        sumsLength = windows * width;
        armedAt = sumsAt + sumsLength;
        countAt = armedAt + 1;
        indexAt = countAt + 1;
        n = (int) packed[countAt];
    }

    /** The state held in `packed` (as {@link #packed} made it). */
    public static PackedTiles of(long[] packed) {
        return new PackedTiles(packed);
    }

    /** A new entity's state: no tiles, no timer. */
    public static PackedTiles fresh(long[] layout, long[] meta, long[] sums) {
        return withTiles(layout, meta, sums, TileWindows.NONE, new TileWindows.MemoryTiles());
    }

    /** State of `layout` holding `meta`, `sums`, the armed timer and every tile of `tiles` (tiles
     * shorter than the layout's width padded with zeros, longer ones cut). */
    public static PackedTiles withTiles(long[] layout, long[] meta, long[] sums, long armed,
                                        TileWindows.Tiles tiles) {
        try {
            long[] indexes = tiles.indexes(Long.MIN_VALUE, Long.MAX_VALUE);
            int width = (int) layout[0];
            int head = 1 + layout.length + meta.length + sums.length + 2;
            long[] p = new long[head + indexes.length * (1 + width)];
            p[0] = layout.length;
            System.arraycopy(layout, 0, p, 1, layout.length);
            PackedTiles packed = new PackedTiles(p);
            if (packed.metaLength != meta.length || packed.sumsLength != sums.length) {
                throw new IllegalArgumentException("meta or sums do not fit the layout " + Arrays.toString(layout));
            }
            packed.setMeta(meta);
            packed.setSums(sums);
            p[packed.armedAt] = armed;
            p[packed.countAt] = indexes.length;
            packed.n = indexes.length;
            for (int k = 0; k < indexes.length; k++) {
                p[packed.indexAt + k] = indexes[k];
                long[] vec = tiles.get(indexes[k]);
                System.arraycopy(vec, 0, p, packed.valueAt(k), Math.min(width, vec.length));
            }
            return packed;
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    /** This state in the layout of `windows` (`layout`: windows.layout()): itself when it was kept
     * in it, else moved over ({@link TileWindows#relayout}), the armed timer kept. */
    public PackedTiles inLayoutOf(TileWindows windows, long[] layout) throws Exception {
        if (hasLayout(layout)) return this;
        TileWindows.MemoryTiles kept = new TileWindows.MemoryTiles();
        for (long j : indexes(Long.MIN_VALUE, Long.MAX_VALUE)) kept.put(j, get(j));
        long[][] moved = windows.relayout(layout(), meta(), sums(), kept);
        return withTiles(layout, moved[0], moved[1], armed(), kept);
    }

    /** The array to store (a new one after a tile was added or removed). */
    public long[] packed() {
        return p;
    }

    /** Whether this state was kept under `layout`. */
    public boolean hasLayout(long[] layout) {
        return p[0] == layout.length && Arrays.equals(p, 1, 1 + layout.length, layout, 0, layout.length);
    }

    public long[] layout() {
        return Arrays.copyOfRange(p, 1, 1 + (int) p[0]);
    }

    public long[] meta() {
        return Arrays.copyOfRange(p, metaAt, metaAt + metaLength);
    }

    public long[] sums() {
        return Arrays.copyOfRange(p, sumsAt, sumsAt + sumsLength);
    }

    public void setMeta(long[] meta) {
        System.arraycopy(meta, 0, p, metaAt, metaLength);
    }

    public void setSums(long[] sums) {
        System.arraycopy(sums, 0, p, sumsAt, sumsLength);
    }

    /** The event-time timer armed for the entity (NONE: none). */
    public long armed() {
        return p[armedAt];
    }

    public void arm(long at) {
        p[armedAt] = at;
    }

    public boolean isEmpty() {
        return n == 0;
    }

    private int valueAt(int k) {
        return indexAt + n + k * width;
    }

    /** Position of `tile` among the indexes, or -(insertion point) - 1. */
    private int find(long tile) {
        int at = Arrays.binarySearch(p, indexAt, indexAt + n, tile);
        return at >= 0 ? at - indexAt : at + indexAt;
    }

    private int lowerBound(long tile) {
        int at = find(tile);
        return at >= 0 ? at : -at - 1;
    }

    @Override
    public long[] get(long tile) {
        int k = find(tile);
        if (k < 0) return null;
        int from = valueAt(k);
        return Arrays.copyOfRange(p, from, from + width);
    }

    @Override
    public void put(long tile, long[] values) {
        int k = find(tile);
        if (k >= 0) {
            System.arraycopy(values, 0, p, valueAt(k), Math.min(width, values.length));
            return;
        }
        int ins = -k - 1;
        long[] grown = new long[p.length + 1 + width];
        int valuesFrom = indexAt + n;
        // head and the indexes before `ins`; the new index; the indexes after it and the values
        // before tile ins; the new values; the values after
        System.arraycopy(p, 0, grown, 0, indexAt + ins);
        grown[indexAt + ins] = tile;
        System.arraycopy(p, indexAt + ins, grown, indexAt + ins + 1, n - ins + ins * width);
        int newValueAt = valuesFrom + 1 + ins * width;
        System.arraycopy(values, 0, grown, newValueAt, Math.min(width, values.length));
        System.arraycopy(p, valuesFrom + ins * width, grown, newValueAt + width, (n - ins) * width);
        n++;
        grown[countAt] = n;
        p = grown;
    }

    @Override
    public void remove(long tile) {
        int k = find(tile);
        if (k < 0) return;
        long[] shrunk = new long[p.length - 1 - width];
        int valuesFrom = indexAt + n;
        System.arraycopy(p, 0, shrunk, 0, indexAt + k);
        System.arraycopy(p, indexAt + k + 1, shrunk, indexAt + k, n - k - 1 + k * width);
        System.arraycopy(p, valuesFrom + (k + 1) * width, shrunk, valuesFrom - 1 + k * width, (n - k - 1) * width);
        n--;
        shrunk[countAt] = n;
        p = shrunk;
    }

    @Override
    public long[] indexes(long from, long to) {
        int lo = lowerBound(from), hi = lowerBound(to);
        return lo >= hi ? new long[0] : Arrays.copyOfRange(p, indexAt + lo, indexAt + hi);
    }

    @Override
    public long first(long from) {
        int lo = lowerBound(from);
        return lo < n ? p[indexAt + lo] : TileWindows.NONE;
    }
}
