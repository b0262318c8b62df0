"""Settings of the read client (featurestore/client.py). The config's `serving` section is this
model plus the HTTP server's settings (settings/infrastructure.py ServingConfig), so each
setting is defined once. Durations in milliseconds ('50ms', '1s' in YAML)."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.durations import Duration


class ClientSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    timeout: Duration = Field(50, gt=0)  # a read waits this long for Redis, then falls back
    pool_size: int = Field(16, ge=1)
    cache_ttl: Duration = Field(500, ge=0)  # a value read is served from the local cache this long
    cache_max_entries: int = Field(100_000, ge=0)
    breaker_failures: int = Field(3, ge=1)  # reads failing in a row that open the circuit breaker ...
    breaker_open_for: Duration = Field(1000, ge=0)  # ... for this long
    defaults: dict[str, Any] = Field(default_factory=dict)  # feature -> value when missing
    fallback_trends: str = "top_1h"  # the region_trends feature whose videos are the fallback list
