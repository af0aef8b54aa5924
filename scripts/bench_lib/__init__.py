"""Helpers of scripts/bench (standard library only)."""
