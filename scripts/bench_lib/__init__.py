"""Helpers of scripts/bench and scripts/soak (standard library only)."""
