"""Stored agents and their immutable versions on PostgreSQL (``mastra_agents``, ``mastra_agent_versions``)."""

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
from .base import PGDomain
from .codec import PGRowCodec
from .sqlfrag import json_equals

AGENT = PGRowCodec(StoredAgent, AGENTS)
# Mastra keeps instructions in a text column: a string, or a JSON array of instruction blocks.
VERSION = PGRowCodec(
    AgentVersion,
    AGENT_VERSIONS,
    encoders={"instructions": lambda v: dumps(v) if isinstance(v, list) else v},
    reads={
        "instructions": "CASE WHEN {a}instructions LIKE '[%]' THEN {a}instructions::jsonb "
        "ELSE to_jsonb({a}instructions) END"
    },
)


class AgentsPG(PGDomain):
    """Stored agent configurations with numbered versions on PostgreSQL."""

    tables = (AGENTS, AGENT_VERSIONS)
    domain: ClassVar[str] = "agents"

    def indexes(self) -> list[str]:
        x = self.object_name
        agents, versions = self.t("mastra_agents"), self.t("mastra_agent_versions")
        return [
            f'CREATE UNIQUE INDEX IF NOT EXISTS "{x("mastra_agent_versions_agent_number_idx")}" '
            f'ON {versions} ("agentId", "versionNumber")',
            f'CREATE INDEX IF NOT EXISTS "{x("mastra_agents_createdat_idx")}" ON {agents} ("createdAt" DESC)',
            f'CREATE INDEX IF NOT EXISTS "{x("mastra_agents_status_createdat_idx")}" '
            f'ON {agents} (status, "createdAt" DESC)',
        ]

    def _insert(self, codec: PGRowCodec[Any], table: str) -> str:
        return f"INSERT INTO {self.t(table)} ({codec.columns}) VALUES ({codec.placeholders()})"

    async def _get(self, conn: Any, agent_id: str, lock: bool = False) -> StoredAgent | None:
        sql = f"SELECT {AGENT.select} FROM {self.t('mastra_agents')} WHERE id = $1" + (" FOR UPDATE" if lock else "")
        rows = await (conn.fetch(sql, agent_id) if conn is not None else self.fetch(sql, agent_id))
        return AGENT.decode(rows[0]) if rows else None

    @operation
    async def create(self, *, agent: AgentCreate | Mapping[str, Any]) -> StoredAgent:
        record, version = new_agent(agent)

        async def body(conn: Any) -> StoredAgent:
            inserted = await conn.fetch(
                self._insert(AGENT, "mastra_agents") + " ON CONFLICT (id) DO NOTHING RETURNING id",
                *AGENT.params(record),
            )
            if not inserted:
                raise ConflictError(f"Agent with id {record.id} already exists", details={"agentId": record.id})
            await conn.execute(self._insert(VERSION, "mastra_agent_versions"), *VERSION.params(version))
            return record

        return await self.transaction(body, idempotent=False)

    @operation
    async def get_by_id(self, *, id: str) -> StoredAgent | None:
        require_id(id, "id")
        return await self._get(None, id)

    async def _version(self, clause: str | None, *args: Any) -> AgentVersion | None:
        table = self.t("mastra_agent_versions")
        if clause is None:
            sql = f'SELECT {VERSION.select} FROM {table} WHERE "agentId" = $1 ORDER BY "versionNumber" DESC LIMIT 1'
        else:
            sql = f"SELECT {VERSION.select} FROM {table} WHERE {clause} LIMIT 1"
        rows = await self.fetch(sql, *args)
        return VERSION.decode(rows[0]) if rows else None

    @operation
    async def get_by_id_resolved(
        self, *, id: str, status: str | None = None, version_id: str | None = None
    ) -> ResolvedAgent | None:
        check_resolve(id, status, version_id)
        return await resolve_agent(
            await self._get(None, id),
            status,
            version_id,
            lambda v: self._version("id = $1", v),
            lambda: self._version(None, id),
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

        async def body(conn: Any) -> StoredAgent:
            agent = await self._get(conn, id, lock=True)
            if agent is None:
                raise NotFoundError(f"Agent {id} not found", details={"agentId": id})
            apply_agent_update(agent, changes, patch)
            await conn.execute(
                self._insert(AGENT, "mastra_agents") + " ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, "
                '"activeVersionId" = EXCLUDED."activeVersionId", "authorId" = EXCLUDED."authorId", '
                "visibility = EXCLUDED.visibility, metadata = EXCLUDED.metadata, "
                '"updatedAt" = EXCLUDED."updatedAt", "updatedAtZ" = EXCLUDED."updatedAtZ"',
                *AGENT.params(agent),
            )
            return agent

        return await self.transaction(body)

    @operation
    async def delete(self, *, id: str) -> None:
        require_id(id, "id")

        async def body(conn: Any) -> None:
            await conn.execute(f'DELETE FROM {self.t("mastra_agent_versions")} WHERE "agentId" = $1', id)
            await conn.execute(f"DELETE FROM {self.t('mastra_agents')} WHERE id = $1", id)

        await self.transaction(body)

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
        p = Params("numeric")
        clauses: list[str] = []
        if status is not None:
            clauses.append(f"status = {p(check_choice(status, AGENT_STATUSES, 'status'))}")
        if author_id is not None:
            clauses.append(f'"authorId" = {p(author_id)}')
        clauses += json_equals("metadata", check_scalar_filter(metadata), p)
        table = self.t("mastra_agents")
        rows, total = await self.paged(
            f'SELECT {AGENT.select} FROM {table}{where(clauses)} ORDER BY "{column}" {dir_}, id ASC',
            f"SELECT COUNT(*) FROM {table}{where(clauses)}",
            p.values,
            win,
        )
        return ListAgentsResult(
            agents=AGENT.decode_all(rows),
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
        versions = self.t("mastra_agent_versions")

        async def body(conn: Any) -> AgentVersion:
            # The agent row lock makes numbering race-free: concurrent creators take turns.
            if await self._get(conn, agent_id, lock=True) is None:
                raise NotFoundError(f"Agent {agent_id} not found", details={"agentId": agent_id})
            rows = await conn.fetch(
                f'SELECT {VERSION.select} FROM {versions} WHERE "agentId" = $1 ORDER BY "versionNumber" DESC LIMIT 1',
                agent_id,
            )
            latest = VERSION.decode(rows[0]) if rows else None
            version = next_version(agent_id, latest, config, change_message, version_number)
            inserted = await conn.fetch(
                self._insert(VERSION, "mastra_agent_versions")
                + ' ON CONFLICT ("agentId", "versionNumber") DO NOTHING RETURNING id',
                *VERSION.params(version),
            )
            if not inserted:
                raise ConflictError(f"Agent {agent_id} already has version {version.version_number}")
            return version

        return await self.transaction(body, idempotent=False)

    @operation
    async def get_version(self, *, id: str) -> AgentVersion | None:
        return await self._version("id = $1", require_id(id, "id"))

    @operation
    async def get_version_by_number(self, *, agent_id: str, version_number: int) -> AgentVersion | None:
        require_id(agent_id, "agent_id")
        return await self._version('"agentId" = $1 AND "versionNumber" = $2', agent_id, version_number)

    @operation
    async def get_latest_version(self, *, agent_id: str) -> AgentVersion | None:
        return await self._version(None, require_id(agent_id, "agent_id"))

    @operation
    async def list_versions(
        self, *, agent_id: str, page: int = 0, per_page: PerPage = 100, direction: str = "DESC"
    ) -> ListAgentVersionsResult:
        require_id(agent_id, "agent_id")
        win = window(page, per_page)
        dir_ = check_direction(direction)
        table = self.t("mastra_agent_versions")
        rows, total = await self.paged(
            f'SELECT {VERSION.select} FROM {table} WHERE "agentId" = $1 ORDER BY "versionNumber" {dir_}',
            f'SELECT COUNT(*) FROM {table} WHERE "agentId" = $1',
            [agent_id],
            win,
        )
        return ListAgentVersionsResult(
            versions=VERSION.decode_all(rows),
            **win.page_fields(total),
        )

    @operation
    async def delete_version(self, *, id: str) -> None:
        await self.execute(f"DELETE FROM {self.t('mastra_agent_versions')} WHERE id = $1", require_id(id, "id"))

    @operation
    async def count_versions(self, *, agent_id: str) -> int:
        rows = await self.fetch(
            f'SELECT COUNT(*) FROM {self.t("mastra_agent_versions")} WHERE "agentId" = $1',
            require_id(agent_id, "agent_id"),
        )
        return int(rows[0][0])
