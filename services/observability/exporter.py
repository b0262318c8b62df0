"""The /metrics endpoint of a `fyp run` / `fyp writer` process (prometheus_client's HTTP server,
a thread of its own; a scrape reads the collectors then)."""
from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, start_http_server

log = logging.getLogger("fyp.metrics")


def start_exporter(port: int, collectors, host: str = "127.0.0.1") -> CollectorRegistry | None:
    """Serves the collectors on host:port; port 0 disables it. A taken port is logged, not fatal:
    metrics must never stop the pipeline."""
    if not port:
        return None
    registry = CollectorRegistry()
    for c in collectors:
        registry.register(c)
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as e:
        log.warning("metrics endpoint %s:%d not started: %s", host, port, e)
        return None
    print(f"metrics: http://{host}:{port}/metrics", flush=True)
    return registry
