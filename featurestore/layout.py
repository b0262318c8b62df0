"""The one owner of the Redis key layout and value encoding. See featurestore/SPEC.md (v1).

Key:    fyp:v1:<group>:{<entity_id>}      a hash; the braces are a Redis Cluster hash tag, so all
                                          groups of one entity live in one slot.
Fields: <feature name> -> value           ints as decimal, floats as shortest round-trip repr
        _ts  -> as-of event time (ms)     the version: an update with an older or equal (_ts, _n)
        _n   -> events absorbed           is ignored, so replays and restarts never move a
        _wt  -> wall time of the write    feature backwards or double count.
Expiry: a TTL per feature group, renewed on every accepted write.
"""
from __future__ import annotations

import json
import math

SPEC_VERSION = 1
PREFIX = f"fyp:v{SPEC_VERSION}"
META_TS = "_ts"
META_ABSORBED = "_n"
META_WRITE_TIME = "_wt"


def entity_key(group: str, entity_id: str) -> str:
    return f"{PREFIX}:{group}:{{{entity_id}}}"


def writer_offsets_key(writer: str) -> str:
    """Hash of the writer service's consumed positions, "<topic>:<partition>" -> next offset. Kept
    in Redis beside the features they produced (written in the same pipeline), so the writer does
    not depend on the broker's consumer-group coordinator."""
    return f"{PREFIX}:_offsets:{{{writer}}}"


def milestone_key(video_id: str) -> str:
    """Hash of a video's crossed milestones: "<threshold>" -> JSON {"crossed_at", "creator_id",
    "notified"}. Written once per field (HSETNX semantics), so it also deduplicates notifications."""
    return f"{PREFIX}:video_milestones:{{{video_id}}}"


def spike_alert_key(video_id: str) -> str:
    """A video's last spike alert: the dedup record that enforces one alert per cooldown, kept in
    Redis so a restarted alerter (or a replaying job) does not alert again. See fyp/alerts/."""
    return f"{PREFIX}:spike_alerts:{{{video_id}}}"


def alert_outbox_key(webhook: str) -> str:
    """A webhook's pending deliveries (alerts not yet accepted by the receiver), kept in Redis so
    they survive a restart of the alerter. See fyp/alerts/."""
    return f"{PREFIX}:_alert_outbox:{{{webhook}}}"


def encode_value(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"non-finite feature value {value!r}")
        return repr(value)
    if isinstance(value, (list, dict)):
        # ranked lists (interests, trends): compact JSON, floats as shortest round-trip repr
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    raise TypeError(f"cannot encode {type(value).__name__} as a feature value")


def decode_value(dtype: str, raw):
    if raw is None:
        return None
    if isinstance(raw, bytes):
        raw = raw.decode()
    if dtype == "json":
        return json.loads(raw)
    if dtype == "str":
        return raw
    return int(raw) if dtype == "int" else float(raw)


# Versioned write: KEYS[1] = key; ARGV = ts, absorbed, ttl_ms, write_time, field1, value1, ...
# Returns 1 when written, 0 when the stored version is newer or equal (a replay).
WRITE_SCRIPT = """
local cur = redis.call('HMGET', KEYS[1], '_ts', '_n')
if cur[1] then
  local cts = tonumber(cur[1])
  local cn = tonumber(cur[2]) or 0
  local ts = tonumber(ARGV[1])
  local n = tonumber(ARGV[2])
  if ts < cts or (ts == cts and n <= cn) then
    return 0
  end
end
redis.call('HSET', KEYS[1], '_ts', ARGV[1], '_n', ARGV[2], '_wt', ARGV[4], unpack(ARGV, 5))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
