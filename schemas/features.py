"""Feature group schemas: which entity a group describes, its features in order, and their types.

A feature update (the message on the feature-updates topic, and what the writer stores) carries the
values of one group for one entity, in the order its group gives. The groups themselves are declared
with the feature logic (operators/feature_groups.py): their features follow from the declarations.
"""
from __future__ import annotations

from dataclasses import dataclass

VIDEO_ENGAGEMENT = "video_engagement"
USER_INTERESTS = "user_interests"
REGION_TRENDS = "region_trends"
VIDEO_SPIKES = "video_spikes"


@dataclass(frozen=True)
class Feature:
    name: str
    dtype: str  # "int" | "float" | "str" | "json" (a ranked list)


@dataclass(frozen=True)
class FeatureGroup:
    name: str
    entity: str
    version: int
    features: tuple[Feature, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def dtype(self, feature: str) -> str:
        for f in self.features:
            if f.name == feature:
                return f.dtype
        raise KeyError(f"{feature!r} is not a feature of group {self.name}")
