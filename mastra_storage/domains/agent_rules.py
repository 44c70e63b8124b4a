"""Agent versioning rules every backend applies the same way (reference §3.5)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec

from ..core.codec import later_than, new_id, utc_now
from ..core.validate import check_choice, check_mapping, coerce, optional_text, require_id
from ..errors import ValidationError
from ..types import AGENT_CONFIG_FIELDS, AgentCreate, AgentVersion, ResolvedAgent, StoredAgent

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


async def resolve_agent(
    agent: StoredAgent | None,
    status: str | None,
    version_id: str | None,
    version_by_id: Callable[[str], Awaitable[AgentVersion | None]],
    latest: Callable[[], Awaitable[AgentVersion | None]],
) -> ResolvedAgent | None:
    """``get_by_id_resolved``: the agent with the version asked for (it must be the agent's own),
    else — unless ``status="draft"`` — its active version, else its latest one."""
    if agent is None:
        return None
    version: AgentVersion | None = None
    if version_id is not None:
        version = await version_by_id(version_id)
        if version is not None and version.agent_id != agent.id:
            version = None
    elif status != "draft" and agent.active_version_id:
        version = await version_by_id(agent.active_version_id)
    if version is None and version_id is None:
        version = await latest()
    return resolve(agent, version)


def check_resolve(id: object, status: object, version_id: object) -> None:
    require_id(id, "id")
    if status is not None:
        check_choice(status, AGENT_STATUSES, "status")
    if version_id is not None:
        require_id(version_id, "version_id")


def new_agent(agent: AgentCreate | Mapping[str, Any]) -> tuple[StoredAgent, AgentVersion]:
    """What ``create`` writes: the thin agent row (a draft) and version 1 holding its configuration."""
    spec = coerce(AgentCreate, agent, "agent")
    require_id(spec.id, "agent.id")
    now = utc_now()
    record = StoredAgent(
        id=spec.id,
        status="draft",
        created_at=now,
        updated_at=now,
        author_id=spec.author_id,
        visibility=spec.visibility if spec.visibility is not None else ("private" if spec.author_id else None),
        metadata=spec.metadata,
        favorite_count=0,
    )
    config = config_of(spec)
    version = AgentVersion(
        **config,
        id=new_id(),
        agent_id=spec.id,
        version_number=1,
        created_at=now,
        changed_fields=[name for name, value in config.items() if value is not None],
        change_message="Initial version",
    )
    return record, version


def check_new_version(version_number: object, change_message: object, config: object) -> None:
    if version_number is not None and (
        isinstance(version_number, bool) or not isinstance(version_number, int) or version_number < 1
    ):
        raise ValidationError(f"version_number must be a positive integer, got {version_number!r}")
    if change_message is not None and not isinstance(change_message, str):
        raise ValidationError("change_message must be a string")
    if not isinstance(config, Mapping):
        raise ValidationError("config must be a mapping of agent config fields")


def next_version(
    agent_id: str,
    latest: AgentVersion | None,
    config: Mapping[str, Any],
    change_message: str | None,
    version_number: int | None,
) -> AgentVersion:
    """The next version: numbered after ``latest`` unless a number is given."""
    full, changed = next_config(latest, config)
    number = version_number if version_number is not None else (latest.version_number + 1 if latest else 1)
    return AgentVersion(
        **full,
        id=new_id(),
        agent_id=agent_id,
        version_number=number,
        created_at=utc_now(),
        changed_fields=changed,
        change_message=change_message,
    )


def check_agent_update(
    id: object, status: object, active_version_id: object, author_id: object, visibility: object, metadata: object
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``update`` input, validated: the owner-field changes (None = leave alone) and the metadata patch."""
    require_id(id, "id")
    if status is not None:
        check_choice(status, AGENT_STATUSES, "status")
    if active_version_id is not None:
        require_id(active_version_id, "active_version_id")
    for name, value in (("author_id", author_id), ("visibility", visibility)):
        optional_text(value, name)  # a wrong type is an error, never stored as something else
    patch = check_mapping(metadata, "metadata") if metadata is not None else None
    changes = {"status": status, "active_version_id": active_version_id, "author_id": author_id,
               "visibility": visibility}  # fmt: skip
    return changes, patch


def apply_agent_update(agent: StoredAgent, changes: Mapping[str, Any], metadata: Mapping[str, Any] | None) -> None:
    """Owner fields replace, metadata merges shallowly, ``updated_at`` strictly increases."""
    for name, value in changes.items():
        if value is not None:
            setattr(agent, name, value)
    if metadata is not None:
        agent.metadata = {**(agent.metadata or {}), **metadata}
    agent.updated_at = later_than(agent.updated_at)
