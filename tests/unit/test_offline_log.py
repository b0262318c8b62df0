"""The offline feature log on hand-made rows: point-in-time semantics (served and event), the
manifest's commit and orphan rules, flushing, and where a restarted writer resumes."""
from __future__ import annotations

import json
import random
import threading

import orjson
import pandas as pd
import pytest

from featurestore import layout
from featurestore.offline_log import MANIFEST, OfflineLog, OfflineLogError, hour_of, read_manifest, resume_positions
from featurestore.offline_store import OfflineStore, rows_as_json
from featurestore.updates import FeatureUpdate
from schemas.features import Feature, FeatureGroup

G = FeatureGroup("g", "video", 1, (Feature("n", "int"), Feature("x", "float"), Feature("s", "str"),
                                    Feature("j", "json")))
H = FeatureGroup("h", "video", 1, (Feature("m", "int"),))
GROUPS = {"g": G, "h": H}
TTL = 1000
HOUR = 3_600_000


def up(eid, as_of, absorbed, n, group="g"):
    if group == "h":
        return FeatureUpdate("h", eid, as_of, absorbed, [n])
    return FeatureUpdate("g", eid, as_of, absorbed, [n, n / 4, f"s{n}", [["c", n]]])


def store(root) -> OfflineStore:
    return OfflineStore(root, GROUPS, {"g": TTL, "h": TTL})


def at(st, eid, times, mode="served", **kw) -> list:
    df = st.get_historical(pd.DataFrame({"id": [eid] * len(times), "ts": times}), mode=mode, **kw)
    return [None if pd.isna(v) else int(v) for v in df["n"]]


@pytest.fixture
def log_with_history(tmp_path):
    """Key `a` through stale writes, a replay, an expiry and a write after it; `c` with two
    versions in one batch."""
    log = OfflineLog(tmp_path, GROUPS, flush_rows=1000, flush_interval_ms=60_000)
    log.append([up("a", 10, 1, 1)], 100, {"t:0": 1})
    log.append([up("a", 5, 9, 2)], 200, {"t:0": 2})  # older as-of: stale
    log.append([up("a", 10, 1, 99)], 300, {"t:0": 3})  # equal version (a replay): stale
    log.append([up("a", 10, 2, 3)], 400, {"t:0": 4})  # more events at the same as-of: newer
    log.append([up("a", 8, 1, 4)], 2000, {"t:0": 5})  # older, but the key expired at 1400: written
    log.append([up("a", 9, 1, 5)], 2100, {"t:0": 6})
    log.append([up("c", 2, 1, 11), up("c", 1, 1, 10)], 500, {"t:1": 2})  # one batch: Redis got (2, 1)
    log.close()
    return tmp_path


def test_served_mode_is_what_the_online_store_returned(log_with_history):
    st = store(log_with_history)
    assert at(st, "a", [50, 100, 250, 399, 400, 1400, 1401, 1999, 2000, 2099, 2100, 3100, 3101]) == \
        [None, 1, 1, 1, 3, 3, None, None, 4, 4, 5, 5, None]
    assert at(st, "c", [499, 500, 10_000]) == [None, 11, None]
    assert at(st, "nobody", [100, 10**13]) == [None, None]


def test_event_mode_is_the_newest_version_by_as_of_time(log_with_history):
    st = store(log_with_history)
    # (5,9)=2  (8,1)=4  (9,1)=5  (10,1)=1/99  (10,2)=3; no expiry in event time
    assert at(st, "a", [4, 5, 7, 8, 9, 10, 10**13], mode="event") == [None, 2, 2, 4, 5, 3, 3]
    assert at(st, "c", [0, 1, 2], mode="event") == [None, 10, 11]


def test_types_as_of_columns_order_and_datetimes(log_with_history):
    st = store(log_with_history)
    ts = pd.to_datetime([400, 50, 2100], unit="ms", utc=True)
    df = st.get_historical(pd.DataFrame({"id": ["a", "a", "a"], "when": ts}), time_column="when")
    assert list(df.columns) == ["id", "when", "n", "x", "s", "j", "g__as_of", "m", "h__as_of"]
    assert df["when"].dtype == ts.dtype  # the caller's times come back as given
    assert str(df["n"].dtype) == "Int64" and df["x"].dtype == "float64" and str(df["g__as_of"].dtype) == "Int64"
    assert df["n"].tolist()[0] == 3 and df["x"].tolist()[0] == 0.75 and df["s"].tolist()[0] == "s3"
    assert df["j"].tolist()[0] == [["c", 3]] and df["g__as_of"].tolist()[0] == 10
    assert pd.isna(df["n"][1]) and pd.isna(df["x"][1]) and df["s"][1] is None and df["j"][1] is None
    assert df["n"].tolist()[2] == 5 and pd.isna(df["m"][0])  # group h was never written
    naive = st.get_historical(pd.DataFrame({"id": ["a"], "ts": pd.to_datetime([400], unit="ms")}), features=["n"])
    assert list(naive.columns) == ["id", "ts", "n", "g__as_of"] and naive["n"][0] == 3
    row = rows_as_json(df.rename(columns={"when": "ts"}), ["g", "h"], ["n", "s", "j", "m"])[1]
    assert row == {"id": "a", "ts": row["ts"], "found": False, "as_of": {"g": None, "h": None},
                   "features": {"n": None, "s": None, "j": None, "m": None}}


def test_clear_errors(log_with_history):
    st = store(log_with_history)
    with pytest.raises(KeyError, match="unknown feature 'nope'"):
        st.get_historical(pd.DataFrame({"id": ["a"], "ts": [1]}), features=["nope"])
    with pytest.raises(KeyError, match="no feature group for entity 'user'"):
        st.get_historical(pd.DataFrame({"id": ["a"], "ts": [1]}), entity="user")
    with pytest.raises(ValueError, match="epoch milliseconds"):
        st.get_historical(pd.DataFrame({"id": ["a"], "ts": ["yesterday"]}))
    with pytest.raises(ValueError, match="needs a column 'ts'"):
        st.get_historical(pd.DataFrame({"id": ["a"], "time": [1]}))
    with pytest.raises(ValueError, match="mode"):
        st.get_historical(pd.DataFrame({"id": ["a"], "ts": [1]}), mode="now")


def test_partitions_by_group_and_hour_and_prunes_later_hours(tmp_path):
    t0 = 1_718_000_000_000 // HOUR * HOUR
    log = OfflineLog(tmp_path, GROUPS, flush_rows=1000, flush_interval_ms=60_000)
    log.append([up("a", 1, 1, 1), up("a", 1, 1, 7, group="h")], t0 + 10, {"t:0": 2})
    log.append([up("a", 2, 1, 2)], t0 + HOUR + 10, {"t:0": 3})
    log.close()
    files = read_manifest(tmp_path)["files"]
    assert sorted(f["path"].rsplit("/", 1)[0] for f in files) == [
        f"group=g/hour={hour_of(t0)}", f"group=g/hour={hour_of(t0 + HOUR)}", f"group=h/hour={hour_of(t0)}"]
    assert hour_of(t0) == pd.Timestamp(t0, unit="ms").strftime("%Y-%m-%dT%H")
    later = next(f for f in files if f["hour"] == hour_of(t0 + HOUR))
    (tmp_path / later["path"]).unlink()  # a read before that hour must not even open it
    st = store(tmp_path)
    assert at(st, "a", [t0 + 10, t0 + 500]) == [1, 1]
    with pytest.raises(OSError):  # a read at that hour needs it
        at(st, "a", [t0 + HOUR + 10])


def test_flushes_at_flush_rows_and_after_flush_interval(tmp_path):
    now = [0.0]
    log = OfflineLog(tmp_path, GROUPS, flush_rows=3, flush_interval_ms=10_000, clock=lambda: now[0])
    log.append([up("a", 1, 1, 1), up("b", 1, 1, 1)], 100, {"t:0": 2})
    assert read_manifest(tmp_path)["files"] == []
    log.append([up("a", 2, 1, 2)], 200, {"t:0": 3})  # 3 rows: a flush starts at once
    log.wait()
    assert [f["rows"] for f in read_manifest(tmp_path)["files"]] == [3]
    log.append([up("a", 3, 1, 3)], 300, {"t:0": 4})
    now[0] = 9.9
    assert not log.flush_if_due()
    now[0] = 10.0
    assert log.flush_if_due()  # the oldest buffered row waited flush_interval
    log.wait()
    m = read_manifest(tmp_path)
    assert [f["rows"] for f in m["files"]] == [3, 1] and m["positions"] == {"t:0": 4}
    log.append([], 400, {"t:0": 9})  # only undecodable messages: the positions still advance
    now[0] = 20.0
    assert log.flush_if_due()
    log.wait()
    assert read_manifest(tmp_path)["positions"] == {"t:0": 9}
    log.close()


def test_a_flush_runs_beside_the_writer_and_commits_what_it_took(tmp_path, monkeypatch):
    """The writer goes on appending while a flush writes and commits: the flush commits the rows
    and positions it took, the rows appended meanwhile wait for the next one."""
    log = OfflineLog(tmp_path, GROUPS, flush_rows=2, flush_interval_ms=60_000)
    release, committing = threading.Event(), threading.Event()
    real_commit = log._commit

    def slow_commit(manifest):  # a flush held up in its commit (a slow disk)
        committing.set()
        assert release.wait(30)
        real_commit(manifest)
    monkeypatch.setattr(log, "_commit", slow_commit)
    log.append([up("a", 1, 1, 1), up("b", 1, 1, 1)], 100, {"t:0": 2})  # due: the flush starts
    assert committing.wait(30)
    log.append([up("a", 2, 1, 2)], 200, {"t:0": 3})  # returns while the flush waits in its commit
    assert read_manifest(tmp_path)["files"] == []
    release.set()
    log.wait()
    m = read_manifest(tmp_path)
    assert [f["rows"] for f in m["files"]] == [2] and m["positions"] == {"t:0": 2}
    log.close()
    m = read_manifest(tmp_path)
    assert [f["rows"] for f in m["files"]] == [2, 1] and m["positions"] == {"t:0": 3}


def test_a_failed_flush_is_raised_to_the_writer_and_commits_nothing(tmp_path, monkeypatch):
    log = OfflineLog(tmp_path, GROUPS, flush_rows=1, flush_interval_ms=60_000)

    def disk_full(_manifest):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(log, "_commit", disk_full)
    log.append([up("a", 1, 1, 1)], 100, {"t:0": 1})  # due: the flush starts, and fails
    with pytest.raises(OSError, match="No space"):
        log.append([up("a", 2, 1, 2)], 200, {"t:0": 2})  # the next flush waits for it first
    log.abandon()
    assert read_manifest(tmp_path)["positions"] == {}


def test_a_crash_before_the_manifest_leaves_an_orphan_that_nobody_reads(tmp_path, monkeypatch):
    log = OfflineLog(tmp_path, GROUPS, flush_rows=1000, flush_interval_ms=60_000)
    log.append([up("a", 1, 1, 1)], 100, {"t:0": 1, "t:1": 5})
    log.flush()
    log.append([up("a", 2, 1, 2)], 200, {"t:0": 2})

    def die(_manifest):
        raise KeyboardInterrupt("killed between the file write and the manifest replace")
    monkeypatch.setattr(log, "_commit", die)
    with pytest.raises(KeyboardInterrupt):
        log.flush()
    log.abandon()
    assert len(list(tmp_path.glob("group=g/hour=*/*.parquet"))) == 2  # one committed, one orphan
    assert store(tmp_path).scan("g")["n"].tolist() == [1]
    assert at(store(tmp_path), "a", [10**6]) == [None]  # 1 expired; 2 is not committed
    again = OfflineLog(tmp_path, GROUPS)
    assert again.positions == {"t:0": 1, "t:1": 5}
    assert len(list(tmp_path.glob("group=g/hour=*/*.parquet"))) == 1  # the orphan is gone
    again.close()


def test_one_writer_per_log(tmp_path):
    log = OfflineLog(tmp_path, GROUPS)
    with pytest.raises(OfflineLogError, match="in use by another writer"):
        OfflineLog(tmp_path, GROUPS)
    log.close()
    OfflineLog(tmp_path, GROUPS).close()


def test_a_damaged_manifest_is_an_error_not_an_empty_log(tmp_path):
    (tmp_path / MANIFEST).write_text('{"format": 1, "files": [')
    with pytest.raises(OfflineLogError, match="not valid JSON"):
        OfflineLog(tmp_path, GROUPS)
    (tmp_path / MANIFEST).write_text(json.dumps({"format": 2, "files": [], "positions": {}}))
    with pytest.raises(OfflineLogError, match="format 2"):
        read_manifest(tmp_path)


def test_resume_positions_take_the_lower_of_redis_and_the_log():
    redis_pos = {"t:0": 50, "t:1": 70, "t:2": 5}
    assert resume_positions(redis_pos, None) == redis_pos  # no log
    # t:0: the log lost a buffer the Redis write had covered; t:1: never behind Redis in practice,
    # still the lower one; t:2: the log has nothing of it, so from the beginning (absent)
    assert resume_positions(redis_pos, {"t:0": 40, "t:1": 80}) == {"t:0": 40, "t:1": 70}
    assert resume_positions({}, {"t:0": 40}) == {}  # Redis lost its data: everything again


def test_values_of_another_type_are_logged_as_the_online_store_holds_them(tmp_path):
    log = OfflineLog(tmp_path, GROUPS)
    log.append([FeatureUpdate("g", "a", 1, 1, [2.0, 1, "5", {"k": 1}]),
                FeatureUpdate("g", "b", 1, 1, [2.5, 1.5, 5, []]),  # 2.5 is no int, 5 no str: null online too
                FeatureUpdate("g", "c", 1, 1, [True, True, "y", []])], 100, {})
    log.close()
    df = store(tmp_path).scan("g").set_index("entity_id")
    assert df.loc["a", "n"] == 2 and df.loc["a", "x"] == 1.0 and df.loc["a", "s"] == "5"
    assert df.loc["a", "j"] == '{"k":1}' and pd.isna(df.loc["b", "n"]) and df.loc["b", "s"] is None
    assert log.stats["coerced_values"] == 2
    assert df.loc["c", "n"] == 1 and df.loc["c", "x"] == 1.0
    # the same values through the online store's codec
    codec = layout.RowCodec(GROUPS["g"])
    assert codec.decode(codec.encode(1, 1, 1, [2.5, 1.5, 5, []])[0])[0] == [None, 1.5, None, []]


def test_command_line_times_and_errors(tmp_path, capsys):
    from fyp.cli import main
    from settings.config import load_config
    from fyp.offline_cli import parse_time_ms
    from operators.feature_groups import groups_for

    assert parse_time_ms("1718000000000") == 1718000000000
    assert parse_time_ms("2024-06-10T06:13:20Z") == parse_time_ms("2024-06-10T06:13:20") == 1718000000000
    assert parse_time_ms("2024-06-10T08:13:20.5+02:00") == 1718000000500
    with pytest.raises(ValueError, match="ISO-8601"):
        parse_time_ms("yesterday")
    config = tmp_path / "c.yaml"
    config.write_text(f"offline: {{root: {tmp_path / 'log'}}}\n")
    get = ["--config", str(config), "offline", "get", "--entity", "video", "--ids", "v1,v2", "--as-of"]
    with pytest.raises(SystemExit, match="no offline log at"):
        main([*get, "1718000000000"])
    groups = groups_for(load_config(config))
    g = groups["video_spikes"]
    log = OfflineLog(tmp_path / "log", groups)
    log.append([FeatureUpdate(g.name, "v1", 5, 1, [0.5, "rising", 3, 0.9, 1.5, 40, 2.0])], 1718000000000, {})
    log.close()
    with pytest.raises(SystemExit, match="--as-of: expected"):
        main([*get, "soon"])
    with pytest.raises(SystemExit, match="unknown feature 'nope'"):
        main([*get, "1718000000000", "--features", "nope"])
    main([*get, "2024-06-10T06:13:20Z", "--features", "spike_state,views_1h"])
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines == [
        {"id": "v1", "ts": 1718000000000, "found": True, "as_of": {"video_engagement": None, "video_spikes": 5},
         "features": {"spike_state": "rising", "views_1h": None}},
        {"id": "v2", "ts": 1718000000000, "found": False, "as_of": {"video_engagement": None, "video_spikes": None},
         "features": {"spike_state": None, "views_1h": None}}]


def test_closed_hours_are_compacted_to_one_file_per_group(tmp_path, monkeypatch):
    t0 = 1_718_000_000_000 // HOUR * HOUR
    log = OfflineLog(tmp_path, GROUPS, flush_rows=1, flush_interval_ms=60_000)  # a file per append
    for i in range(3):
        log.append([up("a", i, 1, i)], t0 + i, {"t:0": i + 1})
    log.append([up("a", 0, 0, 7, group="h")], t0 + 5, {"t:0": 4})
    log.wait()
    assert len(read_manifest(tmp_path)["files"]) == 4
    before = at(store(tmp_path), "a", [t0, t0 + 1, t0 + 2], mode="served")
    log.append([up("a", 9, 1, 9)], t0 + HOUR, {"t:0": 5})  # the first row of the next hour
    log.wait()
    files = read_manifest(tmp_path)["files"]
    assert sorted((f["group"], f["hour"], f["rows"]) for f in files) == [
        ("g", hour_of(t0), 3), ("g", hour_of(t0 + HOUR), 1), ("h", hour_of(t0), 1)]
    assert len(list(tmp_path.glob("group=*/hour=*/*.parquet"))) == 3  # the parts are deleted
    assert store(tmp_path).scan("g")["n"].tolist() == [0, 1, 2, 9]
    assert at(store(tmp_path), "a", [t0, t0 + 1, t0 + 2], mode="served") == before == [0, 1, 2]
    merged = next(f for f in files if f["group"] == "g" and f["hour"] == hour_of(t0))
    assert (merged["min_written_at"], merged["max_written_at"], merged["min_as_of"], merged["max_as_of"]) == \
        (t0, t0 + 2, 0, 2)
    # killed during a compaction: the parts stay committed, the merged file is an orphan
    for i in range(2):
        log.append([up("b", i, 1, i)], t0 + HOUR + 10 + i, {"t:0": 6 + i})
    log.wait()

    commits = []
    real_commit = log._commit

    def commit_then_die(manifest):  # the flush commits; the compaction after it is killed
        commits.append(manifest)
        if len(commits) == 2:
            raise KeyboardInterrupt("killed before the compaction's manifest replace")
        real_commit(manifest)
    monkeypatch.setattr(log, "_commit", commit_then_die)
    log.append([up("b", 5, 1, 5)], t0 + 2 * HOUR, {"t:0": 8})
    with pytest.raises(KeyboardInterrupt):
        log.wait()
    log.abandon()
    assert store(tmp_path).scan("g")["n"].tolist() == [0, 1, 2, 9, 0, 1, 5]
    assert len(list(tmp_path.glob("group=*/hour=*/*.parquet"))) == 7  # 6 committed, the merged orphan
    again = OfflineLog(tmp_path, GROUPS)
    assert len(list(tmp_path.glob("group=*/hour=*/*.parquet"))) == len(read_manifest(tmp_path)["files"]) == 6
    again.close()


def test_a_closed_hour_whose_group_gained_a_feature_merges_with_nulls_in_the_older_rows(tmp_path):
    """A restart with a feature added to a group: the hour's earlier parts lack its column; the
    merged file has it, null in their rows (the merge reads a part at a time)."""
    t0 = 1_718_000_000_000 // HOUR * HOUR
    before = OfflineLog(tmp_path, {"h": H}, flush_rows=1, flush_interval_ms=60_000)
    for i in range(2):
        before.append([up("a", i, 1, i, group="h")], t0 + i, {"t:0": i + 1})
    before.close()
    grown = FeatureGroup("h", "video", 2, (Feature("m", "int"), Feature("k", "float")))
    after = OfflineLog(tmp_path, {"h": grown}, flush_rows=1, flush_interval_ms=60_000)
    after.append([FeatureUpdate("h", "a", 5, 1, [5, 0.5])], t0 + 5, {"t:0": 3})
    after.append([FeatureUpdate("h", "a", 9, 1, [9, 2.5])], t0 + HOUR, {"t:0": 4})  # the hour closes
    after.close()
    files = read_manifest(tmp_path)["files"]
    assert sorted((f["hour"], f["rows"]) for f in files) == [(hour_of(t0), 3), (hour_of(t0 + HOUR), 1)]
    rows = OfflineStore(tmp_path, {"h": grown}, {"h": TTL}).scan("h")
    assert rows["m"].tolist() == [0, 1, 5, 9]
    assert rows["k"].isna().tolist() == [True, True, False, False] and rows["k"].tolist()[2:] == [0.5, 2.5]
    merged = next(f for f in files if f["hour"] == hour_of(t0))
    assert (merged["min_written_at"], merged["max_written_at"], merged["min_as_of"], merged["max_as_of"]) == \
        (t0, t0 + 5, 0, 5)


def test_a_numeric_group_logs_the_values_the_checked_way_would(tmp_path, monkeypatch):
    """A group of numbers only is converted in one call; it must log what the column-by-column
    way logs: ints exact beyond 2^53, NaN and infinities as they came, and any value that is not a
    number of the feature's type (a string, None, a bool, 2.5 for an int) as that way logs it."""
    num = FeatureGroup("num", "video", 1, (Feature("i", "int"), Feature("f", "float")))
    batches = {
        "plain": [[1, 0.5], [2, 1.5], [3.0, 2]],
        "big": [[2**60 + 1, 0.5], [-(2**60) - 3, 1.0]],
        "nonfinite": [[1, float("nan")], [2, float("inf")]],
        "mixed": [[2.5, 1.0], [4, "5"], [None, None], [True, 0.25]],
    }

    def logged(root, rows):
        log = OfflineLog(root, {"num": num})
        log.append([FeatureUpdate("num", f"e{k}", 1, 1, v) for k, v in enumerate(rows)], 100, {})
        log.close()
        return OfflineStore(root, {"num": num}, {"num": TTL}).scan("num").sort_values("entity_id")

    fast = {name: logged(tmp_path / "fast" / name, rows) for name, rows in batches.items()}
    assert list(fast["big"]["i"]) == [2**60 + 1, -(2**60) - 3]
    assert list(fast["plain"]["i"]) == [1, 2, 3] and str(fast["plain"]["i"].dtype) == "int64"
    monkeypatch.setattr(OfflineLog, "_numeric_columns", lambda *a: None)
    for name, rows in batches.items():
        pd.testing.assert_frame_equal(fast[name], logged(tmp_path / "checked" / name, rows))


def test_a_file_built_in_slices_holds_every_row_in_order_with_its_write_time(tmp_path, monkeypatch):
    """A file's columns are built a slice of rows at a time (the GIL is let go in between); slices
    cut across the writer's batches must log the same rows, in the same order, each with its
    batch's write time, as one slice does."""
    batches = [([up(f"e{i}-{k}", 10 * i + k, k, i * 100 + k) for k in range(n)], 1000 + i)
               for i, n in enumerate((1, 5, 0, 7, 2))]

    def logged(root, rows_per_slice):
        monkeypatch.setattr("featurestore.offline_log.ROWS_PER_SLICE", rows_per_slice)
        log = OfflineLog(root, GROUPS)
        for updates, written_at in batches:
            log.append(updates, written_at, {})
        log.close()
        (file,) = read_manifest(root)["files"]
        return store(root).scan("g"), file

    whole, _ = logged(tmp_path / "whole", 4096)
    sliced, file = logged(tmp_path / "sliced", 3)
    assert len(whole) == 15 and list(whole["written_at"]) == [1000] + [1001] * 5 + [1003] * 7 + [1004] * 2
    assert list(whole["entity_id"]) == [u.entity_id for updates, _ in batches for u in updates]
    pd.testing.assert_frame_equal(whole, sliced)
    assert file["rows"] == 15


def test_values_sent_as_text_are_logged_as_the_same_values_sent_as_lists(tmp_path, monkeypatch):
    """A group of numbers whose values came as the text of their array (the JVM's form) is read in
    one CSV call; it must log exactly what the lists log: every float to the last bit, whatever its
    notation (1.0E-5 as the JVM writes it, 1e-05 as Python does), ints beyond 2^53; and a batch
    with a text that does not read as the columns' types (a float for an int, NaN, a value short)
    is logged as the checked way logs those values."""
    num = FeatureGroup("num", "video", 1, (Feature("i", "int"), Feature("f", "float"), Feature("g", "float")))
    rng = random.Random(11)
    floats = [rng.random() * 10.0 ** rng.randint(-20, 20) for _ in range(400)]
    lists = [[rng.randint(-2**62, 2**62), x, -x] for x in floats]
    java = [f"[{i},{x!r},{-x!r}]".replace("e-", "E-").replace("e+", "E") for i, x, _ in lists]
    texts = {"python": [orjson.dumps(v).decode() for v in lists], "java": java}
    bad = {"float for int": "[2.5,1.0,2.0]", "nan": "[1,NaN,2.0]", "short": "[1,2.0]", "null": "[1,null,2.0]"}

    def logged(root, rows):
        log = OfflineLog(root, {"num": num})
        log.append([FeatureUpdate("num", f"e{k:04d}", 1, 1, v) for k, v in enumerate(rows)], 100, {})
        log.close()
        return OfflineStore(root, {"num": num}, {"num": TTL}).scan("num").sort_values("entity_id")

    want = logged(tmp_path / "lists", lists)
    calls = []
    real = OfflineLog._text_columns
    monkeypatch.setattr(OfflineLog, "_text_columns", lambda self, g, rows: calls.append(len(rows)) or real(self, g, rows))
    for name, rows in texts.items():
        pd.testing.assert_frame_equal(logged(tmp_path / name, rows), want)
    assert calls == [400, 400]
    good = [orjson.dumps(v).decode() for v in lists[:3]]
    for k, (why, text) in enumerate(bad.items()):
        got = logged(tmp_path / f"bad{k}", good + [text])
        pd.testing.assert_frame_equal(got, logged(tmp_path / f"checked{k}", lists[:3] + [layout.values_of_text(text, 3)]))
        assert got.iloc[3].isna().any(), why
