"""Engagement event, version 1: one JSON object per view of a video."""
from __future__ import annotations

from schemas.record import Field, RecordSchema
from schemas.regions import ISO_3166_ALPHA2

# Ids are ASCII and brace-free so they are safe inside Redis keys and hash tags.
ID_PATTERN = r"[A-Za-z0-9_.:\-]{1,128}"
REGION_PATTERN = r"[A-Z]{2}"  # and one of ISO_3166_ALPHA2 (schemas/regions.py): "ZZ" is rejected too
MIN_EVENT_TIME_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_FUTURE_SKEW_MS = 300_000  # a producer clock more than 5 min ahead is a bug, not a view
MAX_DURATION_MS = 4 * 3600 * 1000
MAX_REWATCHES = 1000

ENGAGEMENT_V1 = RecordSchema(
    name="engagement",
    version=1,
    max_bytes=4096,
    fields=(
        Field("event_id", "string", pattern=ID_PATTERN, doc="unique per view"),
        Field("user_id", "string", pattern=ID_PATTERN),
        Field("video_id", "string", pattern=ID_PATTERN),
        Field("event_time", "long", min=MIN_EVENT_TIME_MS, max_future_skew_ms=MAX_FUTURE_SKEW_MS,
              doc="ms since epoch, UTC"),
        Field("region", "string", pattern=REGION_PATTERN, allowed=ISO_3166_ALPHA2,
              doc="ISO 3166-1 alpha-2 code, an assigned one"),
        Field("watch_time_ms", "long", min=0, max=MAX_DURATION_MS * (MAX_REWATCHES + 1)),
        Field("video_duration_ms", "long", min=1, max=MAX_DURATION_MS),
        Field("liked", "boolean"),
        Field("shared", "boolean"),
        Field("commented", "boolean"),
        Field("skipped", "boolean"),
        Field("rewatches", "long", required=False, default=0, min=0, max=MAX_REWATCHES),
    ),
)

EVENT_TIME_FIELD = "event_time"
