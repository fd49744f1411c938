"""Helpers shared by the provider's operators, sensor and trigger (one place for each piece of logic)."""
