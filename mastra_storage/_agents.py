"""Agent versioning rules every backend applies the same way (reference §3.5)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from ._validate import coerce
from .errors import ValidationError
from .types import AGENT_CONFIG_FIELDS, AgentCreate, AgentVersion, ResolvedAgent, StoredAgent

AGENT_STATUSES = ("draft", "published", "archived")


def config_of(source: msgspec.Struct) -> dict[str, Any]:
    return {name: getattr(source, name) for name in AGENT_CONFIG_FIELDS}


def next_config(latest: AgentVersion | None, config: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The full configuration of a new version: the latest one overlaid with ``config``, and the
    names of the fields that changed. Keys are AgentVersion's snake_case config field names."""
    if not isinstance(config, Mapping):
        raise ValidationError("config must be a mapping of agent config fields")
    unknown = set(config) - set(AGENT_CONFIG_FIELDS)
    if unknown:
        raise ValidationError(f"unknown agent config field(s) {sorted(unknown)}; known: {list(AGENT_CONFIG_FIELDS)}")
    base = config_of(latest) if latest is not None else {}
    merged = {**base, **config}
    # Validates the merged result with the same rules as a create (name, instructions, model required).
    checked = coerce(AgentCreate, {**merged, "id": "validation"}, "agent config")
    full = config_of(checked)
    changed = [name for name in AGENT_CONFIG_FIELDS if name in config and base.get(name) != full[name]]
    return full, changed


def resolve(agent: StoredAgent, version: AgentVersion | None) -> ResolvedAgent:
    """The agent merged with its version's configuration (the agent alone if it has no version)."""
    config = config_of(version) if version is not None else {"name": "", "instructions": "", "model": {}}
    return ResolvedAgent(
        **msgspec.structs.asdict(agent),
        **config,
        resolved_version_id=version.id if version is not None else None,
    )
