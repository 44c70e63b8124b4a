"""Stored agents and their immutable versions on libSQL (``mastra_agents``, ``mastra_agent_versions``)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from .._agents import AGENT_STATUSES, config_of, next_config, resolve
from .._base import operation
from .._codec import dumps, later_than, utc_now
from .._sql.pagination import window
from .._sql.params import Params, where
from .._sql.schema import AGENT_VERSIONS, AGENTS
from .._validate import check_choice, check_direction, check_mapping, check_scalar_filter, coerce, require_id
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
from .base import LibSQLDomain
from .codec import RowCodec
from .connection import Stmt, Tx
from .sqlfrag import json_equals


def _instructions_out(value: Any) -> Any:
    """Mastra keeps instructions in a text column: a string, or a JSON array of instruction blocks."""
    return dumps(value) if isinstance(value, list) else value


AGENT = RowCodec(StoredAgent, AGENTS)
VERSION = RowCodec(
    AgentVersion,
    AGENT_VERSIONS,
    encoders={"instructions": _instructions_out},
    reads={
        "instructions": "CASE WHEN {a}instructions LIKE '[%' AND json_valid({a}instructions) "
        "THEN json({a}instructions) ELSE {a}instructions END"
    },
)
_INSERT_AGENT = f"INSERT INTO mastra_agents ({AGENT.columns}) VALUES ({AGENT.placeholders})"
_INSERT_VERSION = f"INSERT INTO mastra_agent_versions ({VERSION.columns}) VALUES ({VERSION.placeholders})"
_LATEST = (
    f'SELECT {VERSION.select} FROM mastra_agent_versions WHERE "agentId" = ? ORDER BY "versionNumber" DESC LIMIT 1'
)


class AgentsLibSQL(LibSQLDomain):
    """Stored agent configurations with numbered versions on a libSQL/SQLite database."""

    tables = (AGENTS, AGENT_VERSIONS)
    indexes = (
        "CREATE UNIQUE INDEX IF NOT EXISTS idx_agent_versions_agent_number "
        'ON mastra_agent_versions ("agentId", "versionNumber")',
        'CREATE INDEX IF NOT EXISTS idx_agents_created_at ON mastra_agents ("createdAt")',
        'CREATE INDEX IF NOT EXISTS idx_agents_status_created_at ON mastra_agents (status, "createdAt")',
    )
    domain: ClassVar[str] = "agents"

    async def _get(self, tx: Tx | None, agent_id: str) -> StoredAgent | None:
        sql, args = f"SELECT {AGENT.select} FROM mastra_agents WHERE id = ?", (agent_id,)
        rows = await (tx.query(sql, args) if tx is not None else self.db.query(sql, args))
        return AGENT.decode(rows[0]) if rows else None

    @operation
    async def create(self, *, agent: AgentCreate | Mapping[str, Any]) -> StoredAgent:
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
            id=str(uuid.uuid4()),
            agent_id=spec.id,
            version_number=1,
            created_at=now,
            changed_fields=[name for name, value in config.items() if value is not None],
            change_message="Initial version",
        )

        async def body(tx: Tx) -> StoredAgent:
            if await self._get(tx, spec.id) is not None:
                raise ConflictError(f"Agent with id {spec.id} already exists", details={"agentId": spec.id})
            await tx.execute(_INSERT_AGENT, AGENT.params(record))
            await tx.execute(_INSERT_VERSION, VERSION.params(version))
            return record

        return await self.db.transaction(body)

    @operation
    async def get_by_id(self, *, id: str) -> StoredAgent | None:
        require_id(id, "id")
        return await self._get(None, id)

    @operation
    async def get_by_id_resolved(
        self, *, id: str, status: str | None = None, version_id: str | None = None
    ) -> ResolvedAgent | None:
        require_id(id, "id")
        if status is not None:
            check_choice(status, AGENT_STATUSES, "status")
        agent = await self._get(None, id)
        if agent is None:
            return None
        version: AgentVersion | None = None
        if version_id is not None:
            version = await self._version_where('id = ? AND "agentId" = ?', (require_id(version_id, "version_id"), id))
        elif status != "draft" and agent.active_version_id:
            version = await self._version_where("id = ?", (agent.active_version_id,))
        if version is None and version_id is None:
            version = await self._version_where(None, (id,))
        return resolve(agent, version)

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
        require_id(id, "id")
        if status is not None:
            check_choice(status, AGENT_STATUSES, "status")
        patch = check_mapping(metadata, "metadata") if metadata is not None else None
        changes = {
            "status": status,
            "active_version_id": active_version_id,
            "author_id": author_id,
            "visibility": visibility,
        }

        async def body(tx: Tx) -> StoredAgent:
            agent = await self._get(tx, id)
            if agent is None:
                raise NotFoundError(f"Agent {id} not found", details={"agentId": id})
            for name, value in changes.items():
                if value is not None:
                    setattr(agent, name, value)
            if patch is not None:
                agent.metadata = {**(agent.metadata or {}), **patch}
            agent.updated_at = later_than(agent.updated_at)
            await tx.execute(
                f"INSERT OR REPLACE INTO mastra_agents ({AGENT.columns}) VALUES ({AGENT.placeholders})",
                AGENT.params(agent),
            )
            return agent

        return await self.db.transaction(body)

    @operation
    async def delete(self, *, id: str) -> None:
        require_id(id, "id")
        await self.db.batch(
            [
                Stmt('DELETE FROM mastra_agent_versions WHERE "agentId" = ?', (id,)),
                Stmt("DELETE FROM mastra_agents WHERE id = ?", (id,)),
            ]
        )

    @operation
    async def list(
        self,
        *,
        status: str | None = None,
        author_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        page: int = 0,
        per_page: PerPage = 100,
        order_by: str = "created_at",
        direction: str = "DESC",
    ) -> ListAgentsResult:
        win = window(page, per_page)
        column = {"created_at": "createdAt", "updated_at": "updatedAt"}[
            check_choice(order_by, ("created_at", "updated_at"), "order_by")
        ]
        dir_ = check_direction(direction)
        p = Params()
        clauses: list[str] = []
        if status is not None:
            clauses.append(f"status = {p(check_choice(status, AGENT_STATUSES, 'status'))}")
        if author_id is not None:
            clauses.append(f'"authorId" = {p(author_id)}')
        clauses += json_equals("metadata", "", check_scalar_filter(metadata), p)
        rows, total = await self._paged(
            f'SELECT {AGENT.select} FROM mastra_agents{where(clauses)} ORDER BY "{column}" {dir_}, id ASC',
            p.values,
            win,
            f"SELECT COUNT(*) FROM mastra_agents{where(clauses)}",
        )
        return ListAgentsResult(
            agents=AGENT.decode_all(rows),
            total=total,
            page=win.page,
            per_page=win.per_page,
            has_more=win.has_more(total),
        )

    @operation
    async def create_version(
        self,
        *,
        agent_id: str,
        config: Mapping[str, Any],
        change_message: str | None = None,
        version_number: int | None = None,
    ) -> AgentVersion:
        require_id(agent_id, "agent_id")
        if version_number is not None and (
            isinstance(version_number, bool) or not isinstance(version_number, int) or version_number < 1
        ):
            raise ValidationError(f"version_number must be a positive integer, got {version_number!r}")
        if change_message is not None and not isinstance(change_message, str):
            raise ValidationError("change_message must be a string")
        if not isinstance(config, Mapping):
            raise ValidationError("config must be a mapping of agent config fields")

        async def body(tx: Tx) -> AgentVersion:
            if await self._get(tx, agent_id) is None:
                raise NotFoundError(f"Agent {agent_id} not found", details={"agentId": agent_id})
            rows = await tx.query(_LATEST, (agent_id,))
            latest = VERSION.decode(rows[0]) if rows else None
            full, changed = next_config(latest, config)
            number = version_number if version_number is not None else (latest.version_number + 1 if latest else 1)
            if version_number is not None and await tx.query(
                'SELECT 1 FROM mastra_agent_versions WHERE "agentId" = ? AND "versionNumber" = ?',
                (agent_id, number),
            ):
                raise ConflictError(f"Agent {agent_id} already has version {number}")
            version = AgentVersion(
                **full,
                id=str(uuid.uuid4()),
                agent_id=agent_id,
                version_number=number,
                created_at=utc_now(),
                changed_fields=changed,
                change_message=change_message,
            )
            await tx.execute(_INSERT_VERSION, VERSION.params(version))
            return version

        return await self.db.transaction(body)

    async def _version_where(self, clause: str | None, args: tuple[Any, ...]) -> AgentVersion | None:
        rows = (
            await self.db.query(f"SELECT {VERSION.select} FROM mastra_agent_versions WHERE {clause} LIMIT 1", args)
            if clause
            else await self.db.query(_LATEST, args)
        )
        return VERSION.decode(rows[0]) if rows else None

    @operation
    async def get_version(self, *, id: str) -> AgentVersion | None:
        return await self._version_where("id = ?", (require_id(id, "id"),))

    @operation
    async def get_version_by_number(self, *, agent_id: str, version_number: int) -> AgentVersion | None:
        require_id(agent_id, "agent_id")
        return await self._version_where('"agentId" = ? AND "versionNumber" = ?', (agent_id, version_number))

    @operation
    async def get_latest_version(self, *, agent_id: str) -> AgentVersion | None:
        return await self._version_where(None, (require_id(agent_id, "agent_id"),))

    @operation
    async def list_versions(
        self, *, agent_id: str, page: int = 0, per_page: PerPage = 100, direction: str = "DESC"
    ) -> ListAgentVersionsResult:
        require_id(agent_id, "agent_id")
        win = window(page, per_page)
        dir_ = check_direction(direction)
        rows, total = await self._paged(
            f'SELECT {VERSION.select} FROM mastra_agent_versions WHERE "agentId" = ? ORDER BY "versionNumber" {dir_}',
            [agent_id],
            win,
            'SELECT COUNT(*) FROM mastra_agent_versions WHERE "agentId" = ?',
        )
        return ListAgentVersionsResult(
            versions=VERSION.decode_all(rows),
            total=total,
            page=win.page,
            per_page=win.per_page,
            has_more=win.has_more(total),
        )

    @operation
    async def delete_version(self, *, id: str) -> None:
        await self.db.execute("DELETE FROM mastra_agent_versions WHERE id = ?", (require_id(id, "id"),))

    @operation
    async def count_versions(self, *, agent_id: str) -> int:
        rows = await self.db.query(
            'SELECT COUNT(*) FROM mastra_agent_versions WHERE "agentId" = ?',
            (require_id(agent_id, "agent_id"),),
        )
        return int(rows[0][0])
