"""Stored agents and their immutable versions on libSQL (``mastra_agents``, ``mastra_agent_versions``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from .._sql.params import Params, where
from .._sql.schema import AGENT_VERSIONS, AGENTS
from ..core.codec import dumps
from ..core.lifecycle import operation
from ..core.paging import window
from ..core.validate import (
    check_choice,
    check_direction,
    check_scalar_filter,
    check_timestamp_order,
    require_id,
)
from ..domains.agent_rules import (
    AGENT_STATUSES,
    apply_agent_update,
    check_agent_update,
    check_new_version,
    check_resolve,
    new_agent,
    next_version,
    resolve_agent,
)
from ..errors import ConflictError, NotFoundError
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
_GET_AGENT = f"SELECT {AGENT.select} FROM mastra_agents WHERE id = ?"
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

    @staticmethod
    def _get_tx(tx: Tx, agent_id: str) -> StoredAgent | None:
        rows = tx.query(_GET_AGENT, (agent_id,))
        return AGENT.decode(rows[0]) if rows else None

    async def _get(self, agent_id: str) -> StoredAgent | None:
        rows = await self.db.query(_GET_AGENT, (agent_id,))
        return AGENT.decode(rows[0]) if rows else None

    @operation
    async def create(self, *, agent: AgentCreate | Mapping[str, Any]) -> StoredAgent:
        record, version = new_agent(agent)

        def body(tx: Tx) -> StoredAgent:
            if self._get_tx(tx, record.id) is not None:
                raise ConflictError(f"Agent with id {record.id} already exists", details={"agentId": record.id})
            tx.execute(_INSERT_AGENT, AGENT.params(record))
            tx.execute(_INSERT_VERSION, VERSION.params(version))
            return record

        return await self.db.transaction(body)

    @operation
    async def get_by_id(self, *, id: str) -> StoredAgent | None:
        require_id(id, "id")
        return await self._get(id)

    @operation
    async def get_by_id_resolved(
        self, *, id: str, status: str | None = None, version_id: str | None = None
    ) -> ResolvedAgent | None:
        check_resolve(id, status, version_id)
        return await resolve_agent(
            await self._get(id),
            status,
            version_id,
            lambda v: self._version_where("id = ?", (v,)),
            lambda: self._version_where(None, (id,)),
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
        changes, patch = check_agent_update(id, status, active_version_id, author_id, visibility, metadata)

        def body(tx: Tx) -> StoredAgent:
            agent = self._get_tx(tx, id)
            if agent is None:
                raise NotFoundError(f"Agent {id} not found", details={"agentId": id})
            apply_agent_update(agent, changes, patch)
            tx.execute(
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
        column, dir_ = check_timestamp_order(order_by, direction)
        p = Params()
        clauses: list[str] = []
        if status is not None:
            clauses.append(f"status = {p(check_choice(status, AGENT_STATUSES, 'status'))}")
        if author_id is not None:
            clauses.append(f'"authorId" = {p(author_id)}')
        clauses += json_equals("metadata", "", check_scalar_filter(metadata), p)
        records, total = await self.paged(
            f'SELECT {AGENT.select} FROM mastra_agents{where(clauses)} ORDER BY "{column}" {dir_}, id ASC',
            f"SELECT COUNT(*) FROM mastra_agents{where(clauses)}",
            p.values,
            win,
            AGENT.decode_all,
        )
        return ListAgentsResult(
            agents=records,
            **win.page_fields(total),
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
        check_new_version(version_number, change_message, config)

        def body(tx: Tx) -> AgentVersion:
            if self._get_tx(tx, agent_id) is None:
                raise NotFoundError(f"Agent {agent_id} not found", details={"agentId": agent_id})
            rows = tx.query(_LATEST, (agent_id,))
            latest = VERSION.decode(rows[0]) if rows else None
            version = next_version(agent_id, latest, config, change_message, version_number)
            if version_number is not None and tx.query(
                'SELECT 1 FROM mastra_agent_versions WHERE "agentId" = ? AND "versionNumber" = ?',
                (agent_id, version_number),
            ):
                raise ConflictError(f"Agent {agent_id} already has version {version_number}")
            tx.execute(_INSERT_VERSION, VERSION.params(version))
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
        records, total = await self.paged(
            f'SELECT {VERSION.select} FROM mastra_agent_versions WHERE "agentId" = ? ORDER BY "versionNumber" {dir_}',
            'SELECT COUNT(*) FROM mastra_agent_versions WHERE "agentId" = ?',
            [agent_id],
            win,
            VERSION.decode_all,
        )
        return ListAgentVersionsResult(
            versions=records,
            **win.page_fields(total),
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
