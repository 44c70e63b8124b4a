"""Stored agents on DynamoDB: an agent and its versions share a partition."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

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
from .base import DynamoDomain, Kept, Partition, optimistic, put
from .connection import ConditionFailed, Item
from .counters import Write
from .items import Expr, esc, keys_of, s, scalar_map, when, with_parts

_VERSIONS = ("V#", "V#~")  # the sort-key range of an agent's versions


def agent_key(agent_id: str) -> tuple[str, str]:
    return f"AGENT#{esc(agent_id)}", "AGENT"


def version_sk(number: int) -> str:
    return f"V#{number:010d}"


class AgentsDynamoDB(DynamoDomain, AgentsStorage):
    """Agents and their versions on DynamoDB; version numbers are claimed with a conditional put,
    so concurrent creators never share one."""

    entities: ClassVar[tuple[str, ...]] = ("agent", "agent_version")
    retention_entities: ClassVar[dict[str, str]] = {}
    record_entities: ClassVar[dict[str, tuple[str, Kept[Any] | None]]] = {
        "agents": ("agent", None),
        "versions": ("agent_version", None),
    }
    counted_indexes: ClassVar[tuple[str, ...]] = ("gsi1", "gsi2")  # gsi3 finds a version by id: no list

    async def _import(self, kind: str, records: list[Any]) -> None:
        items = self._agent_items if kind == "agents" else self._version_items
        await self.write_all([await items(record) for record in records])

    async def _agent_items(self, agent: StoredAgent) -> list[Item]:
        items = await self.items(*agent_key(agent.id), "agent", agent, agent.created_at)
        items[0].update(
            gsi1pk=s("AGENTS"),
            gsi1sk=s(f"{when(agent.created_at)}#{esc(agent.id)}"),
            gsi2pk=s("AGENTS"),
            gsi2sk=s(f"{when(agent.updated_at)}#{esc(agent.id)}"),
            st=s(agent.status),
            meta=scalar_map(agent.metadata),
        )
        if agent.author_id is not None:
            items[0]["aid"] = s(agent.author_id)
        return items

    async def _version_items(self, version: AgentVersion) -> list[Item]:
        pk = agent_key(version.agent_id)[0]
        items = await self.items(pk, version_sk(version.version_number), "agent_version", version, version.created_at)
        items[0].update(gsi3pk=s(f"AGENTVER#{esc(version.id)}"), gsi3sk=s("V"))
        return items

    async def _agent(self, agent_id: str) -> tuple[StoredAgent, Item] | None:
        return await self.read(*agent_key(agent_id), "agent", StoredAgent)

    async def _create(self, agent: StoredAgent, version: AgentVersion) -> None:
        writes = [Write("put", await self._agent_items(agent)), Write("put", await self._version_items(version))]
        try:
            await self.counting.commit(writes, learn=False)
        except ConditionFailed as exc:
            raise agent_exists(agent.id) from exc

    async def _get_agent(self, agent_id: str) -> StoredAgent | None:
        found = await self._agent(agent_id)
        return found[0] if found else None

    async def _get_version(self, version_id: str) -> AgentVersion | None:
        e = self.expr("agent_version")
        items = await self.conn.query(**Partition("gsi3", f"AGENTVER#{esc(version_id)}").request(e))
        versions = await self.decode(items, AgentVersion)
        return versions[0] if versions else None

    async def _latest_version(self, agent_id: str) -> AgentVersion | None:
        e = self.expr("agent_version")
        e.equals("e", "agent_version")
        part = Partition(None, agent_key(agent_id)[0], *_VERSIONS)
        items = await self.conn.query(limit=1, **part.request(e, ScanIndexForward=False))
        versions = await self.decode(items, AgentVersion)
        return versions[0] if versions else None

    async def _update(self, agent_id: str, changes: dict[str, Any], patch: dict[str, Any] | None) -> StoredAgent:
        async def attempt() -> StoredAgent:
            found = await self._agent(agent_id)
            if found is None:
                raise agent_not_found(agent_id)
            agent, old = found
            apply_agent_update(agent, changes, patch)
            await self.replace(await self._agent_items(agent), old)
            return agent

        return await optimistic(attempt)

    async def _delete(self, agent_id: str) -> None:
        part = Partition(None, agent_key(agent_id)[0])
        items = await self.conn.query(**part.request(Expr(), ProjectionExpression="pk, sk, v, n, gsi1pk, gsi2pk"))
        # Versions first, the agent item last (with its counter): an interrupted delete leaves the
        # agent to delete again.
        agents = [i for i in items if i["sk"]["S"] == "AGENT"]
        await self.conn.batch_write(deletes=keys_of(i for i in items if i["sk"]["S"] != "AGENT"))
        await self.counting.commit([Write("delete", [i], i) for i in agents])

    async def _agent_page(self, q: AgentQuery) -> tuple[list[StoredAgent], int]:
        def expr() -> Expr:
            e = self.expr("agent")
            if q.status is not None:
                e.equals("st", q.status)
            if q.author_id is not None:
                e.equals("aid", q.author_id)
            e.map_equals("meta", q.metadata)
            return e

        part = Partition("gsi2" if q.column == "updatedAt" else "gsi1", "AGENTS")
        found = await self.page([part], expr, q.win, forward=q.direction == "ASC")
        return await self.decode(found.items, StoredAgent), found.total or 0

    async def _create_version(
        self, agent_id: str, config: Mapping[str, Any], change_message: str | None, version_number: int | None
    ) -> AgentVersion:
        agent_pk, agent_sk = agent_key(agent_id)

        async def attempt() -> AgentVersion:
            latest = await self._latest_version(agent_id)
            if latest is None and await self._agent(agent_id) is None:
                raise agent_not_found(agent_id)
            version = next_version(agent_id, latest, config, change_message, version_number)
            first, *parts = await self._version_items(version)
            actions = [
                {"ConditionCheck": {"Key": {"pk": s(agent_pk), "sk": s(agent_sk)},
                                    "ConditionExpression": "attribute_exists(pk)"}},
                put(first, "attribute_not_exists(pk)"),
                *(put(p) for p in parts),
            ]  # fmt: skip
            try:
                await self.conn.transact(actions)
            except ConditionFailed as exc:
                if exc.reasons[0].get("Code") == "ConditionalCheckFailed":
                    raise agent_not_found(agent_id) from exc
                if version_number is not None:
                    raise version_taken(agent_id, version_number) from exc
                raise  # someone took the next number first: read the latest again and retry
            return version

        return await optimistic(attempt)

    async def _version_by_number(self, agent_id: str, version_number: int) -> AgentVersion | None:
        found = await self.read(agent_key(agent_id)[0], version_sk(version_number), "agent_version", AgentVersion)
        return found[0] if found else None

    async def _version_page(self, agent_id: str, win: Window, direction: str) -> tuple[list[AgentVersion], int]:
        def expr() -> Expr:
            e = self.expr("agent_version")
            e.equals("e", "agent_version")
            return e

        part = Partition(None, agent_key(agent_id)[0], *_VERSIONS)
        found = await self.page([part], expr, win, forward=direction == "ASC")
        return await self.decode(found.items, AgentVersion), found.total or 0

    async def _delete_version(self, version_id: str) -> None:
        items = await self.conn.query(**Partition("gsi3", f"AGENTVER#{esc(version_id)}").request(Expr()))
        await self.conn.batch_write(deletes=with_parts(items))

    async def _count_versions(self, agent_id: str) -> int:
        e = self.expr("agent_version")
        e.equals("e", "agent_version")
        return await self.conn.count(**Partition(None, agent_key(agent_id)[0], *_VERSIONS).request(e))
