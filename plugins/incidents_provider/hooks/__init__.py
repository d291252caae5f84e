"""Hooks: Connections → domain clients."""
