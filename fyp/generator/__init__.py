"""Deterministic synthetic traffic: engagement and upload events, out-of-order and late events,
malformed payloads and labelled super-spikes."""
