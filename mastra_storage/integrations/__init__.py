"""Integrations with agent frameworks; each imports its framework lazily (see its module)."""
