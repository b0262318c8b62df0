"""Point-in-time reads of the offline feature log (featurestore/offline_log.py).

    store = OfflineStore.from_config(cfg)          # or OfflineStore(root, groups, ttl_ms)
    df = store.get_historical(pd.DataFrame({"id": [...], "ts": [...]}), entity="video")

Two meanings of "the features at time ts" (featurestore/SPEC.md, "Offline log"):

- `served`: what the online store returned at wall time ts. Of the writes made at or before ts,
  the ones Redis accepted (a version greater than every earlier-written one of the key, or any
  version once the key had expired), the newest; missing if the key had expired by ts (its TTL,
  renewed on each accepted write, had run out). This is what a ranking service saw: use it to
  build training rows from logged requests.
- `event`: the newest version with as-of time <= ts, whenever it was written. For backfills and
  replays, where write times mean nothing. No expiry.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from featurestore.offline_log import arrow_schema, read_manifest
from schemas.features import FeatureGroup

MODES = ("served", "event")


class OfflineStore:
    def __init__(self, root: str | Path, groups: dict[str, FeatureGroup], ttl_ms: dict[str, int]):
        self.root = Path(root)
        self.groups = groups
        self.ttl_ms = ttl_ms  # per group, as the writer applies it (config featurestore.ttl)

    @classmethod
    def from_config(cls, cfg) -> "OfflineStore":
        from operators.feature_groups import groups_for

        groups = groups_for(cfg)
        return cls(cfg.offline_root, groups, {g: cfg.ttl_ms(g) for g in groups})

    def get_historical(self, entity_df: pd.DataFrame, features=None, entity: str = "video",
                       time_column: str = "ts", mode: str = "served") -> pd.DataFrame:
        """One row per row of `entity_df` (columns `id` and `time_column`: epoch ms or datetimes,
        naive ones taken as UTC), in its order: `id`, the time column, each feature, and per group
        `<group>__as_of` (the as-of time of the values). Missing values are NA (Int64 columns),
        NaN (float columns) or None (str, json; json values are decoded as the online reader does)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        for col in ("id", time_column):
            if col not in entity_df.columns:
                raise ValueError(f"entity_df needs a column {col!r} (has {', '.join(map(str, entity_df.columns))})")
        plan = self._plan(entity, features)
        left = pd.DataFrame({"_row": np.arange(len(entity_df)), "entity_id": entity_df["id"].astype(str).to_numpy(),
                             "_t": to_epoch_ms(entity_df[time_column])}).sort_values("_t", kind="stable")
        out = pd.DataFrame({"id": entity_df["id"].array, time_column: entity_df[time_column].array})
        if len(left) == 0:
            return out
        manifest = read_manifest(self.root)
        ids = left["entity_id"].unique()
        max_t = int(left["_t"].max())
        for group, names in plan:
            rows = self._read(manifest, group, names, ids, max_t, mode)
            if mode == "served":
                current = served_versions(rows, self.ttl_ms[group.name])
                on = "written_at"
            else:
                current = rows.sort_values(["as_of", "absorbed"], kind="stable") \
                              .drop_duplicates(["entity_id", "as_of"], keep="last")
                on = "as_of"
            merged = pd.merge_asof(left, current.sort_values(on, kind="stable"), left_on="_t", right_on=on,
                                   by="entity_id", direction="backward", allow_exact_matches=True)
            if mode == "served":
                expired = merged["_t"] > merged["written_at"] + self.ttl_ms[group.name]
                merged.loc[expired, [*names, "as_of"]] = None
            merged = merged.sort_values("_row")
            for name in names:
                out[name] = _output_column(merged[name], group.dtype(name))
            out[f"{group.name}__as_of"] = merged["as_of"].astype("Int64").array
        return out

    def scan(self, group: str) -> pd.DataFrame:
        """Every committed row of one group, in log order (for audits and tests)."""
        manifest = read_manifest(self.root)
        g = self._group(group)
        paths = [str(self.root / f["path"]) for f in manifest["files"] if f["group"] == group]
        table = ds.dataset(paths, schema=arrow_schema(g), format="parquet").to_table() if paths \
            else arrow_schema(g).empty_table()
        return table.to_pandas()

    def _group(self, name: str) -> FeatureGroup:
        if name not in self.groups:
            raise KeyError(f"unknown feature group {name!r}")
        return self.groups[name]

    def _plan(self, entity: str, features):
        """Groups of this entity that hold the requested features, with those features."""
        own = [g for g in self.groups.values() if g.entity == entity]
        if not own:
            raise KeyError(f"no feature group for entity {entity!r}")
        if features is None:
            return [(g, list(g.names)) for g in own]
        plan: dict = {}
        for f in features:
            g = next((g for g in own if f in g.names), None)
            if g is None:
                raise KeyError(f"unknown feature {f!r} for entity {entity!r}")
            plan.setdefault(g.name, (g, []))[1].append(f)
        return list(plan.values())

    def _read(self, manifest: dict, group: FeatureGroup, names: list[str], ids, max_t: int, mode: str) -> pd.DataFrame:
        """The group's committed rows of these entities that can matter at or before max_t: written
        by then (served) or as of then (event). Files are pruned by their written_at / as_of range."""
        column = "written_at" if mode == "served" else "as_of"
        paths = [str(self.root / f["path"]) for f in manifest["files"]
                 if f["group"] == group.name and f[f"min_{column}"] <= max_t]
        schema = arrow_schema(group, names)
        if not paths:
            table = schema.empty_table()
        else:
            # an explicit schema: files written before a feature was added read it as null
            table = ds.dataset(paths, schema=schema, format="parquet").to_table(
                filter=ds.field("entity_id").isin(pa.array(ids, pa.string())) & (ds.field(column) <= max_t))
        df = table.to_pandas()
        for name in names:
            if group.dtype(name) == "int":
                df[name] = df[name].astype("Int64")
        return df


def served_versions(rows: pd.DataFrame, ttl_ms: int) -> pd.DataFrame:
    """The writes Redis accepted, one per (entity, write time), sorted by write time.

    Redis takes a write if the key is absent (never written, or expired: `ttl_ms` after its last
    accepted write) or the write's version (as_of, absorbed) is greater than the stored one. Keys
    whose history has no expiry followed by a write are decided with a running maximum; the few
    that do are replayed write by write."""
    rows = rows.sort_values(["entity_id", "written_at", "as_of", "absorbed"], kind="stable").reset_index(drop=True)
    if rows.empty:
        return rows
    rank = _version_rank(rows["as_of"].to_numpy(), rows["absorbed"].to_numpy())
    key = rows["entity_id"]
    best_before = pd.Series(rank).groupby(key).cummax().groupby(key).shift(1).fillna(-1).to_numpy()
    accepted = rank > best_before
    wt = rows["written_at"].to_numpy()
    last_accepted_wt = pd.Series(np.where(accepted, wt, np.nan)).groupby(key).ffill().groupby(key).shift(1)
    after_expiry = (wt > last_accepted_wt.to_numpy() + ttl_ms)  # NaN (no accepted write before) -> False
    if after_expiry.any():
        replay = key.isin(key[after_expiry]).to_numpy()
        accepted[replay] = _accept_with_expiry(key[replay].to_numpy(), wt[replay], rank[replay], ttl_ms)
    # a batch writes only its newest version of a key: of equal write times keep the last (newest)
    return rows[accepted].drop_duplicates(["entity_id", "written_at"], keep="last")


def _version_rank(as_of: np.ndarray, absorbed: np.ndarray) -> np.ndarray:
    """Dense rank of the (as_of, absorbed) pairs: one integer that orders versions as pairs."""
    order = np.lexsort((absorbed, as_of))
    a, n = as_of[order], absorbed[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (a[1:] != a[:-1]) | (n[1:] != n[:-1])
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.cumsum(new)
    return rank


def _accept_with_expiry(keys, wt, rank, ttl_ms: int) -> np.ndarray:
    """Redis's decision write by write (rows sorted by key, then write time)."""
    accepted = np.zeros(len(keys), dtype=bool)
    cur_key, cur_rank, cur_wt = None, -1, 0
    for i in range(len(keys)):
        if keys[i] != cur_key:
            cur_key, cur_rank, cur_wt = keys[i], -1, 0
        live = cur_rank >= 0 and wt[i] <= cur_wt + ttl_ms
        if not live or rank[i] > cur_rank:
            accepted[i] = True
            cur_rank, cur_wt = rank[i], wt[i]
    return accepted


def _output_column(col: pd.Series, dtype: str):
    if dtype == "int":
        return col.astype("Int64").array
    if dtype == "float":
        return col.astype("float64").to_numpy()
    out = np.empty(len(col), dtype=object)  # filled, not np.array(): json lists would become dimensions
    for i, v in enumerate(col):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            out[i] = None
        else:
            out[i] = orjson.loads(v) if dtype == "json" else v
    return out


def to_epoch_ms(ts: pd.Series) -> np.ndarray:
    """Epoch milliseconds of a column of epoch ms (integers) or datetimes (naive ones are UTC)."""
    if pd.api.types.is_datetime64_any_dtype(ts):
        t = pd.to_datetime(ts, utc=True)
        if t.isna().any():
            raise ValueError("the time column has missing values")
        return ((t - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)).to_numpy(dtype=np.int64)
    if pd.api.types.is_integer_dtype(ts):
        return ts.to_numpy(dtype=np.int64)
    raise ValueError(f"the time column must hold epoch milliseconds (integers) or datetimes, got dtype {ts.dtype}")


def rows_as_json(df: pd.DataFrame, groups: list[str], features: list[str], time_column: str = "ts") -> list[dict]:
    """get_historical's rows as the online reader's JSON shape (`fyp features get`), plus the time."""
    out = []
    for rec in df.to_dict("records"):
        as_of = {g: _plain(rec[f"{g}__as_of"]) for g in groups}
        out.append({"id": rec["id"], time_column: _plain(rec[time_column]),
                    "found": any(v is not None for v in as_of.values()), "as_of": as_of,
                    "features": {f: _plain(rec[f]) for f in features}})
    return out


def _plain(v):
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return v
