"""The feature groups the jobs produce, from the feature declarations (operators/engagement.py for
the engagement windows) and the configured windows. Writer, reader, SPEC and tests take the groups
from here."""
from __future__ import annotations

from operators.engagement import FEATURE_BASES, INT_BASES, window_labels
from schemas.features import REGION_TRENDS, USER_INTERESTS, VIDEO_ENGAGEMENT, VIDEO_SPIKES, Feature, FeatureGroup


def video_engagement_group(windows_ms) -> FeatureGroup:
    feats = tuple(
        Feature(f"{base}_{label}", "int" if base in INT_BASES else "float")
        for label in window_labels(windows_ms)
        for base in FEATURE_BASES
    )
    return FeatureGroup(VIDEO_ENGAGEMENT, "video", 1, feats)


# Per user: [[category, weight], ...] and [[creator, weight], ...], top N by weight (see
# operators/interests.py), the views in the user's state, and those with unknown video metadata.
USER_INTERESTS_GROUP = FeatureGroup(USER_INTERESTS, "user", 1, (
    Feature("top_categories", "json"), Feature("top_creators", "json"),
    Feature("events", "int"), Feature("unenriched", "int")))


def region_trends_group(windows_ms) -> FeatureGroup:
    """Per region (and GLOBAL): top_<window> = [{"video", "score", "views", "velocity"}, ...]
    ranked (see operators/trends.py), and how many videos the region's state tracks."""
    feats = tuple(Feature(f"top_{label}", "json") for label in window_labels(windows_ms))
    return FeatureGroup(REGION_TRENDS, "region", 1, feats + (Feature("videos_tracked", "int"),))


# Per video (operators/spikes.py): the detector's score of the newest interval, the spike state
# (normal | rising | super_spike), when the current spike started (0 when normal), the ranking
# damping factor and skip weight, and the rates the state was decided on.
VIDEO_SPIKES_GROUP = FeatureGroup(VIDEO_SPIKES, "video", 1, (
    Feature("spike_score", "float"), Feature("spike_state", "str"), Feature("spike_started_at", "int"),
    Feature("spike_damping", "float"), Feature("spike_skip_weight", "float"),
    Feature("views_last_interval", "int"), Feature("baseline_rate", "float")))


def groups_for(config) -> dict[str, FeatureGroup]:
    """All feature groups a configuration produces, by name."""
    groups = [video_engagement_group(config.engagement.window_ms), USER_INTERESTS_GROUP,
              region_trends_group(config.trends.window_ms), VIDEO_SPIKES_GROUP]
    return {g.name: g for g in groups}
