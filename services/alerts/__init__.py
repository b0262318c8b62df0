"""Super-spike alerts for on-call.

The spike job (Flink) emits a transition each time a video's spike state changes, at least once.
This package turns the transitions INTO super_spike into alerts:

    spike-transitions ──► SpikeAlerter (alerter.py)
                            │ dedup per video with a cooldown, in Redis (ledger.py)
                            │ severity (severity.py), PNG of the recent series (plot.py)
                            ▼
                          spike-alerts topic (one event per alert, key = alert id)
                            │ then, per configured webhook, a durable delivery in Redis (outbox.py)
                            ▼
                          delivery threads (delivery.py): POST plain / Slack / Alertmanager
                          payloads (payloads.py), retried with backoff, never blocking the consumer

`fyp alerts tail` (fyp/alerts_cli.py, tail.py) follows the spike-alerts topic. The runbook the alerts link to
is docs/runbooks/super-spike.md.
"""
