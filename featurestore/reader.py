"""Reading features: `FeatureReader.get(entity, ids, features)` -> typed values with timestamps."""
from __future__ import annotations

from dataclasses import dataclass, field

import redis

from featurestore import layout
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
    def __init__(self, client: redis.Redis, groups: dict[str, FeatureGroup]):
        self.client = client
        self.groups = groups

    def _plan(self, entity: str, features):
        """Groups of this entity that hold the requested features, with those features."""
        own = [g for g in self.groups.values() if g.entity == entity]
        if not own:
            raise KeyError(f"no feature group for entity {entity!r}")
        if features is None:
            return [(g, list(g.names)) for g in own]
        plan = {}
        for f in features:
            g = next((g for g in own if f in g.names), None)
            if g is None:
                raise KeyError(f"unknown feature {f!r} for entity {entity!r}")
            plan.setdefault(g.name, (g, []))[1].append(f)
        return list(plan.values())

    def get(self, entity: str, ids, features=None) -> list[FeatureRow]:
        """One pipelined round trip for all ids and groups. Missing values are None."""
        plan = self._plan(entity, features)
        pipe = self.client.pipeline(transaction=False)
        for eid in ids:
            for g, names in plan:
                pipe.hmget(layout.entity_key(g.name, eid), [*names, layout.META_TS])
        replies = iter(pipe.execute())
        rows = []
        for eid in ids:
            row = FeatureRow(eid)
            for g, names in plan:
                raw = next(replies)
                for name, value in zip(names, raw):
                    row.values[name] = layout.decode_value(g.dtype(name), value)
                ts = raw[-1]
                row.as_of[g.name] = int(ts) if ts is not None else None
            rows.append(row)
        return rows
