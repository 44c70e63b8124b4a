"""Stored agents and their immutable versions on libSQL (``mastra_agents``, ``mastra_agent_versions``)."""

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
_INSERT_AGENT = f"INSERT INTO mastra_agents ({AGENT.columns}) VALUES ({AGENT.placeholders()})"
_INSERT_VERSION = f"INSERT INTO mastra_agent_versions ({VERSION.columns}) VALUES ({VERSION.placeholders()})"
_GET_VERSION = f"SELECT {VERSION.select} FROM mastra_agent_versions WHERE id = ?"
_LATEST = (
    f'SELECT {VERSION.select} FROM mastra_agent_versions WHERE "agentId" = ? ORDER BY "versionNumber" DESC LIMIT 1'
)


class AgentsLibSQL(LibSQLDomain, AgentsStorage):
    """Stored agent configurations with numbered versions on a libSQL/SQLite database."""

    codecs = (AGENT, VERSION)

    @staticmethod
    def _get_tx(tx: Tx, agent_id: str) -> StoredAgent | None:
        rows = tx.query(_GET_AGENT, (agent_id,))
        return AGENT.decode(rows[0]) if rows else None

    async def _create(self, agent: StoredAgent, version: AgentVersion) -> None:
        def body(tx: Tx) -> None:
            if self._get_tx(tx, agent.id) is not None:
                raise agent_exists(agent.id)
            tx.execute(_INSERT_AGENT, AGENT.params(agent))
            tx.execute(_INSERT_VERSION, VERSION.params(version))

        await self.db.transaction(body)

    async def _get_agent(self, agent_id: str) -> StoredAgent | None:
        rows = await self.db.query(_GET_AGENT, (agent_id,))
        return AGENT.decode(rows[0]) if rows else None

    async def _update(self, agent_id: str, changes: dict[str, Any], patch: dict[str, Any] | None) -> StoredAgent:
        def body(tx: Tx) -> StoredAgent:
            agent = self._get_tx(tx, agent_id)
            if agent is None:
                raise agent_not_found(agent_id)
            apply_agent_update(agent, changes, patch)
            tx.execute(
                f"INSERT OR REPLACE INTO mastra_agents ({AGENT.columns}) VALUES ({AGENT.placeholders()})",
                AGENT.params(agent),
            )
            return agent

        return await self.db.transaction(body)

    async def _delete(self, agent_id: str) -> None:
        await self.db.batch(
            [
                Stmt('DELETE FROM mastra_agent_versions WHERE "agentId" = ?', (agent_id,)),
                Stmt("DELETE FROM mastra_agents WHERE id = ?", (agent_id,)),
            ]
        )

    async def _agent_page(self, q: AgentQuery) -> tuple[list[StoredAgent], int]:
        p = Params()
        equal = {"status": q.status, '"authorId"': q.author_id}
        clauses = [f"{column} = {p(value)}" for column, value in equal.items() if value is not None]
        clauses += json_equals("metadata", "", q.metadata, p)
        return await self.paged(
            f'SELECT {AGENT.select} FROM mastra_agents{where(clauses)} ORDER BY "{q.column}" {q.direction}, id ASC',
            f"SELECT COUNT(*) FROM mastra_agents{where(clauses)}",
            p.values,
            q.win,
            AGENT.decode_all,
        )

    async def _create_version(
        self, agent_id: str, config: Mapping[str, Any], change_message: str | None, version_number: int | None
    ) -> AgentVersion:
        def body(tx: Tx) -> AgentVersion:
            if self._get_tx(tx, agent_id) is None:
                raise agent_not_found(agent_id)
            rows = tx.query(_LATEST, (agent_id,))
            latest = VERSION.decode(rows[0]) if rows else None
            version = next_version(agent_id, latest, config, change_message, version_number)
            if version_number is not None and tx.query(
                'SELECT 1 FROM mastra_agent_versions WHERE "agentId" = ? AND "versionNumber" = ?',
                (agent_id, version_number),
            ):
                raise version_taken(agent_id, version_number)
            tx.execute(_INSERT_VERSION, VERSION.params(version))
            return version

        return await self.db.transaction(body)

    async def _version_where(self, sql: str, args: tuple[Any, ...]) -> AgentVersion | None:
        rows = await self.db.query(sql, args)
        return VERSION.decode(rows[0]) if rows else None

    async def _get_version(self, version_id: str) -> AgentVersion | None:
        return await self._version_where(
            f"SELECT {VERSION.select} FROM mastra_agent_versions WHERE id = ?", (version_id,)
        )

    async def _version_by_number(self, agent_id: str, version_number: int) -> AgentVersion | None:
        return await self._version_where(
            f'SELECT {VERSION.select} FROM mastra_agent_versions WHERE "agentId" = ? AND "versionNumber" = ?',
            (agent_id, version_number),
        )

    async def _latest_version(self, agent_id: str) -> AgentVersion | None:
        return await self._version_where(_LATEST, (agent_id,))

    async def _version_page(self, agent_id: str, win: Window, direction: str) -> tuple[list[AgentVersion], int]:
        return await self.paged(
            f'SELECT {VERSION.select} FROM mastra_agent_versions WHERE "agentId" = ? '
            f'ORDER BY "versionNumber" {direction}',
            'SELECT COUNT(*) FROM mastra_agent_versions WHERE "agentId" = ?',
            [agent_id],
            win,
            VERSION.decode_all,
        )

    async def _delete_version(self, version_id: str) -> None:
        await self.db.execute("DELETE FROM mastra_agent_versions WHERE id = ?", (version_id,))

    async def _count_versions(self, agent_id: str) -> int:
        rows = await self.db.query('SELECT COUNT(*) FROM mastra_agent_versions WHERE "agentId" = ?', (agent_id,))
        return int(rows[0][0])
