"""``AgentsStorage``: stored agent configurations with numbered versions, editable at run time.

A backend subclasses it and implements the ``_hooks`` with its own queries; arguments reach them
validated.
"""

from __future__ import annotations

import abc
import builtins
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from ..core.lifecycle import DomainStore, operation
from ..core.paging import Window, window
from ..core.transfer import RecordKind
from ..core.validate import (
    check_choice,
    check_direction,
    check_scalar_filter,
    check_timestamp_order,
    optional_text,
    require_id,
)
from ..errors import ConflictError, NotFoundError, ValidationError
from ..types import (
    AgentCreate,
    AgentVersion,
    ListAgentsResult,
    ListAgentVersionsResult,
    PerPage,
    ResolvedAgent,
    StoredAgent,
)
from .agent_rules import AGENT_STATUSES, check_agent_update, check_new_version, check_resolve, new_agent, resolve_agent

MetadataFilter = Mapping[str, str | int | float | bool | None]


@dataclass(frozen=True)
class AgentQuery:
    """A validated ``list``: equality on the given owner fields and metadata keys, ordered by
    ``column`` (a camelCase column name) in ``direction``, then id ascending."""

    status: str | None
    author_id: str | None
    metadata: dict[str, Any]
    win: Window
    column: str
    direction: str


def agent_not_found(agent_id: str) -> NotFoundError:
    return NotFoundError(f"Agent {agent_id} not found", details={"agentId": agent_id})


def agent_exists(agent_id: str) -> ConflictError:
    return ConflictError(f"Agent with id {agent_id} already exists", details={"agentId": agent_id})


def version_taken(agent_id: str, version_number: int) -> ConflictError:
    return ConflictError(f"Agent {agent_id} already has version {version_number}")


class AgentsStorage(DomainStore):
    """Agents (owner fields: status, active version, author, visibility, metadata) and their
    configuration versions (name, instructions, model, tools, …), numbered from 1."""

    domain = "agents"
    record_kinds: ClassVar[dict[str, RecordKind]] = {
        "agents": RecordKind(StoredAgent, ("id",)),
        "versions": RecordKind(AgentVersion, ("id",)),
    }

    @operation
    async def create(self, *, agent: AgentCreate | Mapping[str, Any]) -> StoredAgent:
        """Creates a draft agent and its version 1 from the given configuration, atomically; an
        existing id is ``ConflictError``."""
        record, version = new_agent(agent)
        await self._create(record, version)
        return record

    @operation
    async def get_by_id(self, *, id: str) -> StoredAgent | None:
        """The agent ``id`` (owner fields only), or None."""
        return await self._get_agent(require_id(id, "id"))

    @operation
    async def get_by_id_resolved(
        self, *, id: str, status: str | None = None, version_id: str | None = None
    ) -> ResolvedAgent | None:
        """The agent merged with a version's configuration: ``version_id`` if given (it must be the
        agent's own), else — unless ``status="draft"`` — its active version, else its latest."""
        check_resolve(id, status, version_id)
        return await resolve_agent(
            await self._get_agent(id), status, version_id, self._get_version, lambda: self._latest_version(id)
        )

    @operation
    async def update(
        self,
        *,
        id: str,
        status: str | None = None,
        active_version_id: str | None = None,
        author_id: str | None = None,
        visibility: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> StoredAgent:
        """Replaces the given owner fields and merges ``metadata`` shallowly, atomically; a missing
        agent is ``NotFoundError``."""
        changes, patch = check_agent_update(id, status, active_version_id, author_id, visibility, metadata)
        return await self._update(id, changes, patch)

    @operation
    async def delete(self, *, id: str) -> None:
        """Deletes the agent and every version of it; a missing agent is a no-op."""
        await self._delete(require_id(id, "id"))

    @operation
    async def list(
        self,
        *,
        status: str | None = None,
        author_id: str | None = None,
        metadata: MetadataFilter | None = None,
        page: int = 0,
        per_page: PerPage = 100,
        order_by: Literal["created_at", "updated_at"] = "created_at",
        direction: Literal["ASC", "DESC"] = "DESC",
    ) -> ListAgentsResult:
        """One page of agents with the given status and author whose metadata has every key/value
        of ``metadata``, ordered by ``order_by`` then id."""
        win = window(page, per_page)
        column, dir_ = check_timestamp_order(order_by, direction)
        if status is not None:
            check_choice(status, AGENT_STATUSES, "status")
        author = optional_text(author_id, "author_id")
        agents, total = await self._agent_page(
            AgentQuery(status, author, check_scalar_filter(metadata), win, column, dir_)
        )
        return ListAgentsResult(agents=agents, **win.page_fields(total))

    @operation
    async def create_version(
        self,
        *,
        agent_id: str,
        config: Mapping[str, Any],
        change_message: str | None = None,
        version_number: int | None = None,
    ) -> AgentVersion:
        """A new version: the latest configuration overlaid with ``config`` (``changed_fields`` says
        what changed), numbered next unless ``version_number`` is given — assigned atomically, so
        concurrent creators never share a number. A taken number is ``ConflictError``; a missing
        agent ``NotFoundError``."""
        require_id(agent_id, "agent_id")
        check_new_version(version_number, change_message, config)
        return await self._create_version(agent_id, config, change_message, version_number)

    @operation
    async def get_version(self, *, id: str) -> AgentVersion | None:
        """The version ``id``, or None."""
        return await self._get_version(require_id(id, "id"))

    @operation
    async def get_version_by_number(self, *, agent_id: str, version_number: int) -> AgentVersion | None:
        """Version number ``version_number`` of the agent, or None."""
        require_id(agent_id, "agent_id")
        if isinstance(version_number, bool) or not isinstance(version_number, int):
            raise ValidationError(f"version_number must be an integer, got {version_number!r}")
        return await self._version_by_number(agent_id, version_number)

    @operation
    async def get_latest_version(self, *, agent_id: str) -> AgentVersion | None:
        """The agent's highest-numbered version, or None."""
        return await self._latest_version(require_id(agent_id, "agent_id"))

    @operation
    async def list_versions(
        self, *, agent_id: str, page: int = 0, per_page: PerPage = 100, direction: Literal["ASC", "DESC"] = "DESC"
    ) -> ListAgentVersionsResult:
        """One page of the agent's versions by number."""
        require_id(agent_id, "agent_id")
        win = window(page, per_page)
        versions, total = await self._version_page(agent_id, win, check_direction(direction))
        return ListAgentVersionsResult(versions=versions, **win.page_fields(total))

    @operation
    async def delete_version(self, *, id: str) -> None:
        """Deletes one version; a missing one is a no-op."""
        await self._delete_version(require_id(id, "id"))

    @operation
    async def count_versions(self, *, agent_id: str) -> int:
        """How many versions the agent has."""
        return await self._count_versions(require_id(agent_id, "agent_id"))

    # ------------------------------------------------------------ what a backend writes

    @abc.abstractmethod
    async def _create(self, agent: StoredAgent, version: AgentVersion) -> None:
        """Writes both or neither; raises ``agent_exists`` if the id is taken."""

    @abc.abstractmethod
    async def _get_agent(self, agent_id: str) -> StoredAgent | None: ...
    @abc.abstractmethod
    async def _update(self, agent_id: str, changes: dict[str, Any], patch: dict[str, Any] | None) -> StoredAgent:
        """Reads, ``apply_agent_update``, writes — atomically; raises ``agent_not_found``."""

    @abc.abstractmethod
    async def _delete(self, agent_id: str) -> None: ...
    @abc.abstractmethod
    async def _agent_page(self, q: AgentQuery) -> tuple[builtins.list[StoredAgent], int]: ...
    @abc.abstractmethod
    async def _create_version(
        self, agent_id: str, config: Mapping[str, Any], change_message: str | None, version_number: int | None
    ) -> AgentVersion:
        """Reads the latest version, writes ``next_version`` of it — the number claimed atomically."""

    @abc.abstractmethod
    async def _get_version(self, version_id: str) -> AgentVersion | None: ...
    @abc.abstractmethod
    async def _version_by_number(self, agent_id: str, version_number: int) -> AgentVersion | None: ...
    @abc.abstractmethod
    async def _latest_version(self, agent_id: str) -> AgentVersion | None: ...
    @abc.abstractmethod
    async def _version_page(
        self, agent_id: str, win: Window, direction: str
    ) -> tuple[builtins.list[AgentVersion], int]: ...
    @abc.abstractmethod
    async def _delete_version(self, version_id: str) -> None: ...
    @abc.abstractmethod
    async def _count_versions(self, agent_id: str) -> int: ...
