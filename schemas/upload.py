"""Upload event, version 1: a video became available."""
from __future__ import annotations

from schemas.engagement import ID_PATTERN, MAX_DURATION_MS, MIN_EVENT_TIME_MS, REGION_PATTERN
from schemas.record import Field, RecordSchema
from schemas.regions import ISO_3166_ALPHA2

CATEGORY_PATTERN = r"[a-z][a-z0-9_]{0,63}"

UPLOAD_V1 = RecordSchema(
    name="upload",
    version=1,
    max_bytes=4096,
    fields=(
        Field("video_id", "string", pattern=ID_PATTERN),
        Field("creator_id", "string", pattern=ID_PATTERN),
        Field("category", "string", pattern=CATEGORY_PATTERN),
        Field("video_duration_ms", "long", min=1, max=MAX_DURATION_MS),
        Field("region", "string", pattern=REGION_PATTERN, allowed=ISO_3166_ALPHA2),
        Field("upload_time", "long", min=MIN_EVENT_TIME_MS, doc="ms since epoch, UTC"),
    ),
)

UPLOAD_TIME_FIELD = "upload_time"
