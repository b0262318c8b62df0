"""Spike detection and its evaluation."""
