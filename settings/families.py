"""Config sections of the feature families (engagement, enrichment, interests, trends, milestones,
spikes) and of on-call alerting."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from operators.engagement import ScoreWeights
from operators.interests import StrengthWeights
from operators.trends import TrendWeights
from schemas.durations import Duration, format_duration
from settings.section import Section


class EngagementConfig(Section):
    windows: list[Duration] = Field(["1h", "6h", "24h"], min_length=1)
    tile: Duration = Field(60_000, gt=0, le=60_000)  # at most 1m: it bounds the window edge error
    emit_interval: Duration = Field(1000, gt=0)
    max_out_of_orderness: Duration = Field(500, ge=0)
    allowed_lateness: Duration = Field(60_000, ge=0)
    score_weights: ScoreWeights = ScoreWeights()

    @property
    def window_ms(self) -> list[int]:
        return list(self.windows)

    @model_validator(mode="after")
    def _tiles(self):
        if self.tile % self.emit_interval:
            raise ValueError("engagement.emit_interval must divide engagement.tile")
        for w in self.windows:
            if w % self.tile:
                raise ValueError(f"engagement window {format_duration(w)} is not a multiple of the tile")
        if self.allowed_lateness + self.tile >= max(self.windows):
            # a correction older than every window could not be counted anywhere
            raise ValueError("engagement.allowed_lateness must be shorter than the longest window minus a tile")
        return self


class EnrichmentConfig(Section):
    """Video metadata (creator, category) from upload-events, joined as of each view's event time."""
    # A view waits until the uploads' watermark passes its event time; with no upload for this
    # long the uploads stream counts as idle and views go on without waiting (as `unknown`).
    metadata_wait: Duration = Field(10_000, gt=0)


class InterestsConfig(Section):
    decay: Duration = Field(1_800_000, gt=0)  # time constant of the exponential decay (30 min)
    top_n: int = Field(10, ge=1)
    prune_below: float = Field(0.05, ge=0)  # an item whose |weight| is below this is not written
    emit_interval: Duration = Field(1000, gt=0)  # a user's views are taken in steps of this much event time
    forget_after: Duration = Field(21_600_000, gt=0)  # an item viewed again after this gap restarts from 0
    min_events: int = Field(3, ge=1)  # a user with fewer events keeps state only newcomer_ttl
    newcomer_ttl: Duration = Field(120_000, gt=0)
    idle_ttl: Duration = Field(7_200_000, gt=0)
    weights: StrengthWeights = StrengthWeights()

    @model_validator(mode="after")
    def _ttls(self):
        if self.newcomer_ttl > self.idle_ttl:
            raise ValueError("interests.newcomer_ttl must not exceed interests.idle_ttl")
        return self


class TrendsConfig(Section):
    windows: list[Duration] = Field(["15m", "1h"], min_length=1)
    top_k: int = Field(20, ge=1)
    weights: TrendWeights = TrendWeights()

    @property
    def window_ms(self) -> list[int]:
        return list(self.windows)

    @field_validator("windows")
    @classmethod
    def _whole_minutes(cls, windows: list[int]) -> list[int]:
        for w in windows:
            if w <= 0 or w % 60_000:
                raise ValueError(f"trends window {format_duration(w)} must be a whole number of minutes")
        return windows


class MilestonesConfig(Section):
    thresholds: list[int] = Field([10_000, 100_000, 1_000_000], min_length=1)

    @field_validator("thresholds")
    @classmethod
    def _distinct_positive(cls, m: list[int]) -> list[int]:
        if any(x < 1 for x in m) or len(set(m)) != len(m):
            raise ValueError("milestones.thresholds must be distinct positive integers")
        return m


class SpikeDamping(Section):
    """Ranking damping of a spiking video (operators/spikes.py)."""
    massive_reach: int = Field(10_000, ge=1)  # views since the spike started from which the video is decayed
    half_life: Duration = Field(3_600_000, gt=0)  # the damping factor halves this often after that
    floor: float = Field(0.1, ge=0, le=1)  # lowest damping factor
    skip_weight: float = 2.0  # weight of a skip during a spike (1.0 otherwise)


class SpikesConfig(Section):
    """Spike state of every video (operators/spikes.py): relative to the video's share of the
    platform's views, no absolute rate, so one config serves any platform size."""
    interval: Duration = Field(60_000, gt=0, multiple_of=1000)  # one step of every video per interval
    baseline_half_life: int = Field(60, ge=1)  # intervals: the video's share of the platform's views
    floor_share_of_mean: float = Field(0.2, gt=0)  # expected views >= this x the platform's mean per active video
    short_intervals: int = Field(3, ge=1)  # intervals the score (Anscombe z) sums over
    rise_growth: float = Field(3.0, ge=1)  # normal -> rising at this growth over the short window ...
    rise_z: float = Field(4.0, gt=0)  # ... and this z
    super_growth: float = Field(10.0, ge=1)  # rising -> super_spike at this growth against the frozen baseline ...
    super_z: float = Field(8.0, gt=0)  # ... and this z of the views since the rise
    rise_window: int = Field(30, ge=1)  # a rise not super within this many intervals ends (a slow climb) ...
    climb_growth: float = Field(2.0, ge=0)  # ... unless its views grew this much over them (0: it ends anyway)
    calm_growth: float = Field(3.0, ge=1)  # an interval under this growth is calm ...
    calm_intervals: int = Field(30, ge=1)  # ... and this many in a row end a spike
    warmup_intervals: int = Field(10, ge=1)  # a video with an unknown past shows this many first
    idle_ttl: Duration = Field(7_200_000, gt=0)  # a normal video without views this long loses its state
    history: int = Field(60, ge=10)  # intervals of views kept per video (the alert's plot)
    damping: SpikeDamping = SpikeDamping()

    @model_validator(mode="after")
    def _growths(self):
        if self.calm_growth > self.super_growth or self.rise_growth > self.super_growth:
            raise ValueError("spikes need calm_growth <= super_growth and rise_growth <= super_growth")
        if self.climb_growth and self.rise_window + self.short_intervals > self.history:
            raise ValueError("spikes.climb_growth compares with the views of rise_window intervals before: "
                             "it needs rise_window + short_intervals <= history")
        return self


class WebhookConfig(Section):
    """One alert receiver. `format`: plain (our JSON), slack (incoming webhook) or alertmanager
    (Alertmanager v2 POST /api/v2/alerts). A header value `$NAME` is read from the environment."""
    name: str = ""
    url: str = Field(pattern=r"^https?://")
    format: Literal["plain", "slack", "alertmanager"] = "plain"
    timeout: Duration = Field(5000, gt=0)
    headers: dict[str, str] = {}


class AlertsConfig(Section):
    cooldown: Duration = Field(21_600_000, ge=0)  # one alert per video per 6 h of event time, across restarts
    runbook_url: str = "https://github.com/fyp-features/fyp-features/blob/main/docs/runbooks/super-spike.md"
    critical_share: float = Field(0.01, gt=0, le=1)  # share of the platform's views from which an alert is critical ...
    critical_regions: int = 3  # ... or from this many regions at once
    retry_initial: Duration = Field(1000, gt=0)  # webhook retry backoff, doubling
    retry_max: Duration = Field(60_000, gt=0)
    give_up_after: Duration = Field(86_400_000, gt=0)  # a delivery older than this is dropped (and logged)
    webhooks: list[WebhookConfig] = []


