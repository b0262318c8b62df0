"""Reading features: `FeatureReader.get(entity, ids, features)` -> typed values with timestamps."""
from __future__ import annotations

from dataclasses import dataclass, field

import redis
from redis.cluster import RedisCluster

from featurestore.read_plan import select
from schemas.features import FeatureGroup


@dataclass
class FeatureRow:
    entity_id: str
    values: dict = field(default_factory=dict)  # feature -> int | float | None (missing)
    as_of: dict = field(default_factory=dict)  # group -> as-of event time (ms), None if absent

    @property
    def found(self) -> bool:
        return any(v is not None for v in self.as_of.values())

    def to_json(self) -> dict:
        return {"id": self.entity_id, "found": self.found, "as_of": self.as_of, "features": self.values}


class FeatureReader:
    """The plain reader for tools and tests: no cache, no fallbacks, None for missing values.
    Ranking services use featurestore/client.py (same selection and decoding, read_plan.py)."""

    def __init__(self, client: redis.Redis, groups: dict[str, FeatureGroup]):
        self.client = client
        self.groups = groups

    def get(self, entity: str, ids, features=None) -> list[FeatureRow]:
        """One MGET for all ids and groups. Missing values are None. Raises layout.SchemaMismatch
        for a value written under another definition of its group."""
        sels = select(self.groups, entity, features)
        keys = [sel.key(eid) for eid in ids for sel in sels]
        if not keys:
            return []
        # a cluster refuses an MGET across slots: redis-py splits it per slot
        mget = self.client.mget_nonatomic if isinstance(self.client, RedisCluster) else self.client.mget
        replies = iter(mget(keys))
        rows = []
        for eid in ids:
            row = FeatureRow(eid)
            for sel in sels:
                values, as_of, _ = sel.decode(next(replies))
                row.values.update(zip(sel.names, values or [None] * len(sel.names)))
                row.as_of[sel.group.name] = as_of
            rows.append(row)
        return rows
