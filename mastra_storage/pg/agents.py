"""Stored agents and their immutable versions on PostgreSQL (``mastra_agents``, ``mastra_agent_versions``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._sql.params import Params, where
from .._sql.schema import AGENT_VERSIONS, AGENTS
from ..core.codec import dumps
from ..core.paging import Window
from ..domains.agent_rules import (
    apply_agent_update,
    next_version,
)
from ..domains.agents import AgentQuery, AgentsStorage, agent_exists, agent_not_found, version_taken
from ..types import (
    AgentVersion,
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


class AgentsPG(PGDomain, AgentsStorage):
    """Stored agent configurations with numbered versions on PostgreSQL."""

    codecs = (AGENT, VERSION)

    def _insert(self, codec: PGRowCodec[Any], table: str) -> str:
        return f"INSERT INTO {self.t(table)} ({codec.columns}) VALUES ({codec.placeholders()})"

    async def _get(self, conn: Any, agent_id: str, lock: bool = False) -> StoredAgent | None:
        sql = f"SELECT {AGENT.select} FROM {self.t('mastra_agents')} WHERE id = $1" + (" FOR UPDATE" if lock else "")
        rows = await (conn.fetch(sql, agent_id) if conn is not None else self.fetch(sql, agent_id))
        return AGENT.decode(rows[0]) if rows else None

    async def _create(self, agent: StoredAgent, version: AgentVersion) -> None:
        async def body(conn: Any) -> None:
            inserted = await conn.fetch(
                self._insert(AGENT, "mastra_agents") + " ON CONFLICT (id) DO NOTHING RETURNING id",
                *AGENT.params(agent),
            )
            if not inserted:
                raise agent_exists(agent.id)
            await conn.execute(self._insert(VERSION, "mastra_agent_versions"), *VERSION.params(version))

        await self.transaction(body, idempotent=False)

    async def _get_agent(self, agent_id: str) -> StoredAgent | None:
        return await self._get(None, agent_id)

    async def _version(self, clause: str | None, *args: Any) -> AgentVersion | None:
        table = self.t("mastra_agent_versions")
        if clause is None:
            sql = f'SELECT {VERSION.select} FROM {table} WHERE "agentId" = $1 ORDER BY "versionNumber" DESC LIMIT 1'
        else:
            sql = f"SELECT {VERSION.select} FROM {table} WHERE {clause} LIMIT 1"
        rows = await self.fetch(sql, *args)
        return VERSION.decode(rows[0]) if rows else None

    async def _update(self, agent_id: str, changes: dict[str, Any], patch: dict[str, Any] | None) -> StoredAgent:
        async def body(conn: Any) -> StoredAgent:
            agent = await self._get(conn, agent_id, lock=True)
            if agent is None:
                raise agent_not_found(agent_id)
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

    async def _delete(self, agent_id: str) -> None:
        async def body(conn: Any) -> None:
            await conn.execute(f'DELETE FROM {self.t("mastra_agent_versions")} WHERE "agentId" = $1', agent_id)
            await conn.execute(f"DELETE FROM {self.t('mastra_agents')} WHERE id = $1", agent_id)

        await self.transaction(body)

    async def _agent_page(self, q: AgentQuery) -> tuple[list[StoredAgent], int]:
        p = Params("numeric")
        equal = {"status": q.status, '"authorId"': q.author_id}
        clauses = [f"{column} = {p(value)}" for column, value in equal.items() if value is not None]
        clauses += json_equals("metadata", q.metadata, p)
        table = self.t("mastra_agents")
        order = f'"{q.column}" {q.direction}, id ASC'
        rows, total = await self.paged(AGENT.select, table, where(clauses), order, p.values, q.win)
        return AGENT.decode_all(rows), total

    async def _create_version(
        self, agent_id: str, config: Mapping[str, Any], change_message: str | None, version_number: int | None
    ) -> AgentVersion:
        versions = self.t("mastra_agent_versions")

        async def body(conn: Any) -> AgentVersion:
            # The agent row lock makes numbering race-free: concurrent creators take turns.
            if await self._get(conn, agent_id, lock=True) is None:
                raise agent_not_found(agent_id)
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
                raise version_taken(agent_id, version.version_number)
            return version

        return await self.transaction(body, idempotent=False)

    async def _get_version(self, version_id: str) -> AgentVersion | None:
        return await self._version("id = $1", version_id)

    async def _version_by_number(self, agent_id: str, version_number: int) -> AgentVersion | None:
        return await self._version('"agentId" = $1 AND "versionNumber" = $2', agent_id, version_number)

    async def _latest_version(self, agent_id: str) -> AgentVersion | None:
        return await self._version(None, agent_id)

    async def _version_page(self, agent_id: str, win: Window, direction: str) -> tuple[list[AgentVersion], int]:
        table = self.t("mastra_agent_versions")
        order = f'"versionNumber" {direction}'
        rows, total = await self.paged(VERSION.select, table, ' WHERE "agentId" = $1', order, [agent_id], win)
        return VERSION.decode_all(rows), total

    async def _delete_version(self, version_id: str) -> None:
        await self.execute(f"DELETE FROM {self.t('mastra_agent_versions')} WHERE id = $1", version_id)

    async def _count_versions(self, agent_id: str) -> int:
        rows = await self.fetch(
            f'SELECT COUNT(*) FROM {self.t("mastra_agent_versions")} WHERE "agentId" = $1', agent_id
        )
        return int(rows[0][0])
