"""The offline feature log: every consumed feature update, as Parquet, for training and audits.

The writer service appends each batch here after its Redis write (services/feature_writer.py), with
the wall time stamped on that write (`_wt`). Rows are buffered and written as one Parquet file per
partition when the buffer holds `flush_rows` rows or its oldest row is `flush_interval` old, and
on close. A flush that falls due runs on a thread of its own while the writer goes on (in the
writer's thread, flushes held it 0.2-1.8 s at 20K events/s live, and no update reached Redis
meanwhile); the next one waits for it. Layout and semantics: featurestore/SPEC.md ("Offline log").

    <root>/_manifest.json                                  what is committed (see below)
    <root>/group=<group>/hour=<YYYY-MM-DDTHH>/part-*.parquet

Nothing lost, nothing twice, across crashes: a file counts only once the manifest lists it, and
the manifest (replaced atomically) also holds the topic positions the committed rows cover. The
writer resumes from the lower of its Redis positions and these (`resume_positions`), and skips
logging messages below the log's positions. A file written but not yet in the manifest when the
process died is an orphan: readers ignore it and the next writer deletes it. Once rows of a new
hour arrive, each earlier hour's files are merged into one per group, so the manifest stays small.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
import uuid
from itertools import chain
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from featurestore import layout
from featurestore.updates import FeatureUpdate
from schemas.features import FeatureGroup

log = logging.getLogger("fyp.offline")

# A file's columns are built this many rows at a time (OfflineLog._write_file says why).
ROWS_PER_SLICE = 4096
MANIFEST = "_manifest.json"
LOCK = "_writer.lock"
FORMAT = 1
META_COLUMNS = (("entity_id", pa.string()), ("as_of", pa.int64()), ("absorbed", pa.int64()),
                ("written_at", pa.int64()))
EXACT_IN_FLOAT = 2**53  # integers below it convert to float64 and back unchanged
ARROW_TYPES = {"int": pa.int64(), "float": pa.float64(), "str": pa.string(), "json": pa.string()}
_CSV_BYTES = layout.NUMBER_BYTES + b",\n"  # the characters of numbers' texts as CSV rows


class OfflineLogError(RuntimeError):
    pass


def arrow_schema(group: FeatureGroup, features=None) -> pa.Schema:
    """Columns of a group's log files: the version and write time, then one typed column per
    feature (json features hold the compact JSON text the online store holds)."""
    names = group.names if features is None else features
    return pa.schema([*META_COLUMNS, *((n, ARROW_TYPES[group.dtype(n)]) for n in names)])


def parquet_options(group: FeatureGroup) -> dict:
    """How a group's files are written: zstd, and dictionary pages only for the entity ids and
    string features. WHY not Arrow's default (a dictionary for every column): numbers that rarely
    repeat (counts, rates) filled a dictionary per column only to fall back to plain pages, and
    writing took twice as long for larger files (200,000 updates of a sparse engagement backfill:
    1.93 against 0.91 us a row, 93 against 84 bytes)."""
    return {"compression": "zstd",
            "use_dictionary": ["entity_id", *(f.name for f in group.features if f.dtype == "str")]}


def hour_of(ms: int) -> str:
    """The partition of a write time: its UTC hour, `YYYY-MM-DDTHH`."""
    return time.strftime("%Y-%m-%dT%H", time.gmtime(ms // 1000))


def read_manifest(root: Path) -> dict:
    """The committed state of the log at `root`: {"format", "files": [...], "positions": {...}};
    empty when no writer has committed there yet."""
    try:
        m = json.loads((root / MANIFEST).read_text())
    except FileNotFoundError:
        return {"format": FORMAT, "files": [], "positions": {}}
    except json.JSONDecodeError as e:  # replaced atomically, so this is damage, not a torn write
        raise OfflineLogError(f"offline log manifest {root / MANIFEST} is not valid JSON: {e}") from None
    if m.get("format") != FORMAT:
        raise OfflineLogError(f"offline log manifest {root / MANIFEST} has format {m.get('format')!r}, "
                              f"this code reads format {FORMAT}")
    return m


def resume_positions(writer_positions: dict[str, int], log_positions: dict[str, int] | None) -> dict[str, int]:
    """Where the writer service resumes ("topic:partition" -> next offset): the lower of its Redis
    positions and the log's, so a batch stored in Redis but lost from the log's buffer in a crash
    is read again (Redis ignores the repeat: versioned writes). A partition the log has no position
    for starts from the beginning (absent from the result). Without a log: the Redis positions."""
    if log_positions is None:
        return dict(writer_positions)
    return {tp: min(off, log_positions[tp]) for tp, off in writer_positions.items() if tp in log_positions}


class OfflineLog:
    """Appended to by one writer process (a lock file enforces it: two writers on one log would
    log every update twice)."""

    def __init__(self, root: str | Path, groups: dict[str, FeatureGroup], flush_rows: int = 50_000,
                 flush_interval_ms: int = 10_000, clock=time.monotonic):
        if flush_rows < 1 or flush_interval_ms < 1:
            raise ValueError("flush_rows and flush_interval_ms must be positive")
        self.root = Path(root)
        self.groups = groups
        self.flush_rows = flush_rows
        self.flush_interval = flush_interval_ms / 1000
        self.clock = clock
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.root / LOCK, "a+")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise OfflineLogError(f"offline log {self.root} is in use by another writer process "
                                  "(one writer per log: stop it, or give this writer its own offline.root)") from None
        self._manifest = read_manifest(self.root)
        self._delete_orphans()
        self._buffer: dict[tuple[str, str], list[tuple[int, list[FeatureUpdate]]]] = {}
        self._buffered_rows = 0
        self._pending_positions: dict[str, int] = {}
        self._oldest: float | None = None  # clock() of the first append since the last flush
        self._newest_hour: str | None = None  # of the rows logged: the hours before it are closed
        self._compacted_before: str | None = None
        self._flushing: threading.Thread | None = None  # the flush in progress
        self._compacting: threading.Thread | None = None  # the compaction in progress
        self._failure: BaseException | None = None  # how a flush or compaction failed: raised to the writer
        self._manifest_lock = threading.Lock()  # a flush and a compaction each replace the manifest
        self.stats = {"rows_logged": 0, "files_written": 0, "flushes": 0, "coerced_values": 0, "compactions": 0}

    @property
    def positions(self) -> dict[str, int]:
        """The committed positions ("topic@topic id:partition" -> next offset): every message below them is
        in a committed file (or was undecodable), and none at or above them is."""
        return dict(self._manifest["positions"])

    def append(self, updates: list[FeatureUpdate], written_at: int, positions: dict[str, int]) -> None:
        """Buffers one batch: the updates consumed (every version, not only the newest per key),
        stored in Redis at `written_at`, and the positions consumed up to. Flushes when due."""
        for u in updates:
            if u.group not in self.groups:
                raise OfflineLogError(f"update for unknown feature group {u.group!r}")
        if updates:
            by_group: dict[str, list[FeatureUpdate]] = {}
            for u in updates:
                by_group.setdefault(u.group, []).append(u)
            hour = hour_of(written_at)
            self._newest_hour = max(hour, self._newest_hour or hour)
            for group, rows in by_group.items():
                self._buffer.setdefault((group, hour), []).append((written_at, rows))
            self._buffered_rows += len(updates)
        if updates or positions:
            self._pending_positions.update(positions)
            if self._oldest is None:
                self._oldest = self.clock()
        self.flush_if_due()

    def flush_if_due(self) -> bool:
        """Starts a flush if the buffer is full or its oldest row has waited `flush_interval` (the
        writer calls this on idle polls too, so a quiet topic still gets its rows out)."""
        if self._oldest is None:
            return False
        if self._buffered_rows >= self.flush_rows or self.clock() - self._oldest >= self.flush_interval:
            self._start_flush()
            return True
        return False

    def flush(self) -> None:
        """Commits everything buffered before it returns."""
        if self._oldest is not None:
            self._start_flush()
        self.wait()

    def wait(self) -> None:
        """Waits for the flush and the compaction in progress; raises what either failed with
        (nothing of a failed flush is committed: the writer dies and reads those rows again from
        the topic)."""
        self._wait_for_flush()
        if self._compacting is not None:
            self._compacting.join()
            self._compacting = None
        self._raise_failure()

    def _wait_for_flush(self) -> None:
        if self._flushing is not None:
            self._flushing.join()
            self._flushing = None
        self._raise_failure()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    def _start_flush(self) -> None:
        """Hands the buffer to a flush thread (after the previous flush has finished: at most
        one buffer is being written while the next fills) and starts a new one."""
        self._wait_for_flush()
        job = (self._buffer, self._buffered_rows, self._pending_positions, self._newest_hour)
        self._buffer, self._buffered_rows, self._pending_positions, self._oldest = {}, 0, {}, None
        self._flushing = threading.Thread(target=self._flush_in_background, args=job, name="offline-log-flush",
                                          daemon=True)
        self._flushing.start()

    def _flush_in_background(self, *job) -> None:
        try:
            self._write_and_commit(*job)
        except BaseException as e:  # noqa: BLE001 - handed to the writer's thread by wait()
            self._failure = e

    def _write_and_commit(self, buffer: dict, rows: int, positions: dict, newest_hour: str | None) -> None:
        """Writes one file per buffered partition, then commits them and the positions in one
        manifest replace. A crash before the replace leaves orphans and the previous manifest."""
        new_files = [self._write_file(group, hour, chunks) for (group, hour), chunks in sorted(buffer.items())]
        with self._manifest_lock:
            manifest = {"format": FORMAT, "files": self._manifest["files"] + new_files,
                        "positions": {**self._manifest["positions"], **positions}}
            self._commit(manifest)
            self._manifest = manifest
        self.stats["rows_logged"] += rows
        self.stats["files_written"] += len(new_files)
        self.stats["flushes"] += 1
        if newest_hour is not None and newest_hour != self._compacted_before and \
                (self._compacting is None or not self._compacting.is_alive()):
            # on a thread of its own: merging an hour takes long, and the next flush must not wait
            self._compacted_before = newest_hour
            self._compacting = threading.Thread(target=self._compact_in_background, args=(newest_hour,),
                                                name="offline-log-compaction", daemon=True)
            self._compacting.start()

    def _compact_in_background(self, newest_hour: str) -> None:
        try:
            self._compact_closed_hours(newest_hour)
        except OSError:  # an optimisation: what is committed stays readable; tried again next hour
            log.exception("offline log: compacting closed hours failed")
        except BaseException as e:  # noqa: BLE001 - handed to the writer's thread by wait()
            self._failure = e

    def close(self) -> None:
        """Flushes what is buffered and releases the log."""
        if self._lock.closed:
            return
        self.flush()
        self._lock.close()

    def abandon(self) -> None:
        """Releases the log without flushing: the buffer is dropped, as in a crash. (Tests use this
        to crash a writer in-process; the rows come back from the topic on the next start.)"""
        for thread in (self._flushing, self._compacting):
            if thread is not None:
                thread.join()
        self._buffer.clear()
        self._lock.close()

    def _write_file(self, group: str, hour: str, chunks: list[tuple[int, list[FeatureUpdate]]]) -> dict:
        g = self.groups[group]
        # WHY in slices, letting the GIL go between them: each conversion below is one C call over
        # all its rows, which holds the GIL throughout (up to about 50 ms for 50,000 engagement rows),
        # and the feature writer's thread, in the same process, waited that long for it at each
        # step of a flush (python -m bench.writer, `flush_gil_gaps_ms`)
        tables = []
        for piece in _slices(chunks, ROWS_PER_SLICE):
            tables.append(self._table(g, piece))
            time.sleep(0)
        table = pa.concat_tables(tables) if tables else self._table(g, chunks)
        return self._write_table(group, hour, table)

    def _table(self, g: FeatureGroup, chunks: list[tuple[int, list[FeatureUpdate]]]) -> pa.Table:
        # columns built a batch at a time (zip in C), not from a tuple per row: the log takes every
        # update the writer reads, and per-row tuples were a quarter of a file's write (cProfile)
        ids, as_ofs, absorbeds, value_rows, counts = [], [], [], [], []
        for _, updates in chunks:
            if updates:
                _, batch_ids, batch_as_ofs, batch_absorbeds, batch_values = zip(*updates)
                ids += batch_ids
                as_ofs += batch_as_ofs
                absorbeds += batch_absorbeds
                value_rows += batch_values
            counts.append(len(updates))
        columns = [pa.array(ids, pa.string()), pa.array(as_ofs, pa.int64()), pa.array(absorbeds, pa.int64()),
                   pa.array(np.repeat(np.array([wt for wt, _ in chunks], np.int64), counts), pa.int64())]
        numeric = self._text_columns(g, value_rows)
        if numeric is None:
            # values sent as text (featurestore/updates.py) that did not read as columns: as lists
            if any(type(v) is str for v in value_rows):
                n = len(g.features)
                value_rows = [layout.values_of_text(v, n) if type(v) is str else v for v in value_rows]
            numeric = self._numeric_columns(g, value_rows)
        if numeric is not None:
            columns += numeric
        else:
            # one pass over the rows turns them into columns (zip in C, not a list per feature)
            by_feature = zip(*value_rows) if value_rows else (() for _ in g.features)
            for f, values in zip(g.features, by_feature):
                columns.append(self._column(g, f.name, f.dtype, values))
        return pa.Table.from_arrays(columns, schema=arrow_schema(g))

    def _write_table(self, group: str, hour: str, table: pa.Table) -> dict:
        """Writes a new file of one partition, on disk before the manifest can name it; returns
        its manifest entry."""
        written_at, as_of = table.column("written_at"), table.column("as_of")
        rel = f"group={group}/hour={hour}/part-{pc.min(written_at).as_py()}-{uuid.uuid4().hex[:12]}.parquet"
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            pq.write_table(table, f, **parquet_options(self.groups[group]))
            f.flush()
            os.fsync(f.fileno())
        return {"path": rel, "group": group, "hour": hour, "rows": table.num_rows,
                "min_written_at": pc.min(written_at).as_py(), "max_written_at": pc.max(written_at).as_py(),
                "min_as_of": pc.min(as_of).as_py(), "max_as_of": pc.max(as_of).as_py()}

    def _compact_closed_hours(self, newest_hour: str) -> None:
        """Merges the files of each hour before `newest_hour` into one file, so the manifest
        (rewritten on every flush) and readers deal with a file per group and hour, not one per
        flush. A part at a time: memory stays that of one part, not of an hour. Beside flushes,
        which only add files: the merged file replaces its parts in the manifest as it is then.
        Crash-safe like a flush: the merged file counts once the manifest names it instead of the
        parts; parts left on disk after that are orphans, deleted at the next start."""
        with self._manifest_lock:
            files = list(self._manifest["files"])
        parts: dict[tuple[str, str], list[dict]] = {}
        for f in files:
            if f["hour"] < newest_hour:
                parts.setdefault((f["group"], f["hour"]), []).append(f)
        merged = {key: self._merge(*key, fs) for key, fs in sorted(parts.items()) if len(fs) > 1}
        if not merged:
            return
        replaced = {f["path"] for key in merged for f in parts[key]}
        with self._manifest_lock:
            kept = []  # in log order: the merged file where its first part was
            for f in self._manifest["files"]:
                key = (f["group"], f["hour"])
                if f["path"] not in replaced:
                    kept.append(f)
                elif key in merged:
                    kept.append(merged.pop(key))
            manifest = {**self._manifest, "files": kept}
            self._commit(manifest)
            self._manifest = manifest
        for path in replaced:
            (self.root / path).unlink(missing_ok=True)
        self.stats["compactions"] += len({(f["group"], f["hour"]) for f in files if f["path"] in replaced})

    def _merge(self, group: str, hour: str, files: list[dict]) -> dict:
        """One file of `files` (one partition's, in log order), written a part at a time; returns
        its manifest entry. A feature added by a restart with a new config is null in older parts."""
        paths = [self.root / f["path"] for f in files]
        schema = pa.unify_schemas([pq.read_schema(p) for p in paths], promote_options="default")
        rel = f"group={group}/hour={hour}/part-{min(f['min_written_at'] for f in files)}-{uuid.uuid4().hex[:12]}.parquet"
        path = self.root / rel
        with open(path, "wb") as out:
            with pq.ParquetWriter(out, schema, **parquet_options(self.groups[group])) as writer:
                for p in paths:
                    table = pq.read_table(p)
                    for field in schema:
                        if field.name not in table.column_names:
                            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
                    writer.write_table(table.select(schema.names).cast(schema))
            out.flush()
            os.fsync(out.fileno())
        return {"path": rel, "group": group, "hour": hour, "rows": sum(f["rows"] for f in files),
                **{k: min(f[k] for f in files) for k in ("min_written_at", "min_as_of")},
                **{k: max(f[k] for f in files) for k in ("max_written_at", "max_as_of")}}

    def _text_columns(self, group: FeatureGroup, value_rows: list) -> list[pa.Array] | None:
        """The columns of a group of numbers whose every row came as the text of its values (as the
        JVM sends them), read in one call of Arrow's CSV reader (each text's numbers are a CSV line;
        the GIL is let go while it reads): 1.7 us a row where parsing each text into a list and
        converting the lists took 3.5. None when a row is not such a text
        or a value does not read as its column's type (2.5 for an int): the caller then reads the
        texts one by one and takes the checked way, so the log holds what it would hold had the
        values come as lists."""
        if not value_rows or any(f.dtype not in ("int", "float") for f in group.features):
            return None
        if not all(type(v) is str and v[:1] == "[" and v[-1:] == "]" for v in value_rows):
            return None
        body = "\n".join([v[1:-1] for v in value_rows]).encode()
        # numbers only (the reader would take "nan" or "inf"); the count of values per row and
        # their types the reader checks (a row of other length, an empty or a non-integral int fails)
        if body.translate(None, _CSV_BYTES):
            return None
        names = [f"c{i}" for i in range(len(group.features))]  # any names: the rows have none
        try:
            table = pa_csv.read_csv(
                pa.py_buffer(body),
                read_options=pa_csv.ReadOptions(column_names=names, use_threads=False, block_size=len(body) + 1),
                parse_options=pa_csv.ParseOptions(newlines_in_values=False),
                convert_options=pa_csv.ConvertOptions(
                    column_types={c: ARROW_TYPES[f.dtype] for c, f in zip(names, group.features)},
                    null_values=[], strings_can_be_null=False))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return None
        if table.num_rows != len(value_rows):
            return None
        return [table.column(c).combine_chunks() for c in names]

    def _numeric_columns(self, group: FeatureGroup, value_rows: list) -> list[pa.Array] | None:
        """The columns of a group whose features are all numbers, converted in one C call (the
        engagement group's updates are most of the log: a column at a time cost 6 us a row, this
        1.5). None when the group has other features or a value is not a number: the caller then
        takes the checked way, column by column. An int column goes through float64 only when
        each of its values is integral and below 2^53 (so exact); else that column is checked."""
        if not value_rows or any(f.dtype not in ("int", "float") for f in group.features):
            return None
        if not set(map(type, chain.from_iterable(value_rows))) <= {int, float}:
            return None  # numpy would read "5" as 5.0 and None as NaN
        try:
            matrix = np.array(value_rows, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            return None
        if matrix.shape != (len(value_rows), len(group.features)):
            return None
        out = []
        for i, (f, col) in enumerate(zip(group.features, np.ascontiguousarray(matrix.T))):
            if f.dtype == "float":
                out.append(pa.array(col, pa.float64()))
            elif np.all(np.abs(col) < EXACT_IN_FLOAT) and np.array_equal(col, np.trunc(col)):
                out.append(pa.array(col.astype(np.int64), pa.int64()))
            else:
                out.append(self._column(group, f.name, f.dtype, [row[i] for row in value_rows]))
        return out

    def _column(self, group: FeatureGroup, name: str, dtype: str, values) -> pa.Array:
        if dtype == "json":
            return pa.array([layout.encode_value(v) for v in values], pa.string())
        # pyarrow would truncate 2.5 into an int64 column: only exact ints take the fast path there
        if dtype != "int" or set(map(type, values)) <= {int}:
            try:
                return pa.array(values, ARROW_TYPES[dtype])
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
                pass
        # A producer sent a value of another type (e.g. 2.5 for an int). Store what the online
        # store holds for it: the value as its type where it is one (3.0 for an int), else null.
        out = []
        for v in values:
            try:
                out.append(layout.to_dtype(dtype, v))
            except (TypeError, ValueError):
                out.append(None)
                self.stats["coerced_values"] += 1
                log.error("offline log: %s.%s value %r is not %s; logged as null", group.name, name, v, dtype)
        return pa.array(out, ARROW_TYPES[dtype])

    def _commit(self, manifest: dict) -> None:
        tmp = self.root / (MANIFEST + ".tmp")
        with open(tmp, "w") as f:
            json.dump(manifest, f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.root / MANIFEST)
        dir_fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a power loss
        finally:
            os.close(dir_fd)

    def _delete_orphans(self) -> None:
        committed = {f["path"] for f in self._manifest["files"]}
        for path in self.root.glob("group=*/hour=*/*.parquet"):
            rel = path.relative_to(self.root).as_posix()
            if rel not in committed:
                log.warning("offline log: deleting %s, written by a writer that stopped before committing it", rel)
                path.unlink()
        (self.root / (MANIFEST + ".tmp")).unlink(missing_ok=True)


def _slices(chunks: list[tuple[int, list[FeatureUpdate]]], most: int):
    """`chunks` ((written_at, updates) in order) cut into lists of the same form of at most `most`
    updates each, in order."""
    piece, rows = [], 0
    for written_at, updates in chunks:
        at = 0
        while at < len(updates):
            take = updates[at:at + most - rows]
            piece.append((written_at, take))
            rows += len(take)
            at += len(take)
            if rows == most:
                yield piece
                piece, rows = [], 0
    if piece:
        yield piece
