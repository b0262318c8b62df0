"""The per-video alert record in Redis (layout.spike_alert_key): one alert per video per cooldown,
across restarts and replays.

The record is a hash {id, at, spike_started_at, severity, published} describing the video's last
alert. A transition into super_spike is claimed with one Lua call (atomic, so a re-emission racing
itself cannot alert twice):

    same id as the record, published      -> "duplicate"  (a re-emission or replay of this spike)
    same id, not yet published            -> "pending"    (an alerter died between claim and
                                                           publish: the caller checks the topic)
    other id, at < record.at + cooldown   -> "cooldown"   (suppressed; this includes anything older
                                                           than the last alert, i.e. replays of
                                                           earlier spikes)
    otherwise (or no record)              -> "claimed"    (the record now holds this alert)

Cooldown is in event time (`at`), so a replay decides exactly as the live run did. The record
lives featurestore.ttl.spike_alerts (it must exceed the cooldown; the TTL is wall time).

Silencing a video (`fyp alerts silence`) writes a record with id "silenced" whose `at` is
until - cooldown, so every spike of the video before `until` (event time) falls in its cooldown.
"""
from __future__ import annotations

from featurestore import layout

CLAIMED, PENDING, DUPLICATE, COOLDOWN = "claimed", "pending", "duplicate", "cooldown"
SILENCED = "silenced"  # the id of a record written by silence()

# KEYS[1] = the video's record; ARGV = id, at, cooldown_ms, ttl_ms, spike_started_at, severity
CLAIM_SCRIPT = """
local cur = redis.call('HMGET', KEYS[1], 'id', 'at', 'published')
if cur[1] then
  if cur[1] == ARGV[1] then
    if cur[3] == '1' then return 'duplicate' end
    return 'pending'
  end
  if tonumber(ARGV[2]) < tonumber(cur[2]) + tonumber(ARGV[3]) then return 'cooldown' end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'at', ARGV[2], 'spike_started_at', ARGV[5], 'severity', ARGV[6],
           'published', '0')
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 'claimed'
"""

# KEYS[1] = the video's record; ARGV = id. Marks it published if it still holds this alert.
MARK_SCRIPT = """
if redis.call('HGET', KEYS[1], 'id') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'published', '1')
  return 1
end
return 0
"""


class AlertLedger:
    def __init__(self, client, cooldown_ms: int, ttl_ms: int):
        self.client, self.cooldown_ms, self.ttl_ms = client, cooldown_ms, ttl_ms
        self._claim = client.register_script(CLAIM_SCRIPT)
        self._mark = client.register_script(MARK_SCRIPT)

    def claim(self, alert: dict) -> str:
        r = self._claim(keys=[layout.spike_alert_key(alert["video_id"])],
                        args=[alert["id"], int(alert["at"]), self.cooldown_ms, self.ttl_ms,
                              int(alert["spike_started_at"]), alert["severity"]])
        return r.decode() if isinstance(r, bytes) else r

    def mark_published(self, alert: dict, pipe=None) -> None:
        """In `pipe` (a transaction) when given, so the mark lands together with the outbox entries."""
        self._mark(keys=[layout.spike_alert_key(alert["video_id"])], args=[alert["id"]], client=pipe or self.client)

    def silence(self, video_id: str, until_ms: int, now_ms: int) -> None:
        """No alert for the video for spikes entering super_spike before `until_ms` (event time;
        it replaces the video's record, so `until_ms` = now lifts an earlier silence)."""
        key = layout.spike_alert_key(video_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(key)
        pipe.hset(key, mapping={"id": SILENCED, "at": until_ms - self.cooldown_ms, "spike_started_at": 0,
                                "severity": "", "published": "1"})
        pipe.pexpire(key, max(self.ttl_ms, until_ms - now_ms + 60_000))
        pipe.execute()

    def record(self, video_id: str) -> dict:
        return {k.decode(): v.decode() for k, v in self.client.hgetall(layout.spike_alert_key(video_id)).items()}
