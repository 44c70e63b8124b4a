"""Stored agents on DynamoDB: an agent and its versions share a partition."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

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
from .base import DynamoDomain, Partition, optimistic, put, read_page, versioned
from .connection import ConditionFailed, Item
from .items import Expr, esc, keys_of, s, scalar_map, when, with_parts

_VERSIONS = ("V#", "V#~")  # the sort-key range of an agent's versions


def agent_key(agent_id: str) -> tuple[str, str]:
    return f"AGENT#{esc(agent_id)}", "AGENT"


def version_sk(number: int) -> str:
    return f"V#{number:010d}"


class AgentsDynamoDB(DynamoDomain):
    """Agents and their versions on DynamoDB; version numbers are claimed with a conditional put,
    so concurrent creators never share one."""

    domain: ClassVar[str] = "agents"
    entities: ClassVar[tuple[str, ...]] = ("agent", "agent_version")
    retention_entities: ClassVar[dict[str, str]] = {}

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

    @operation
    async def create(self, *, agent: AgentCreate | Mapping[str, Any]) -> StoredAgent:
        record, version = new_agent(agent)
        first, *parts = await self._agent_items(record)
        actions = [put(first, "attribute_not_exists(pk)"), *(put(p) for p in parts)]
        actions += [put(i) for i in await self._version_items(version)]
        try:
            await self.conn.transact(actions)
        except ConditionFailed as exc:
            raise ConflictError(f"Agent with id {record.id} already exists", details={"agentId": record.id}) from exc
        return record

    @operation
    async def get_by_id(self, *, id: str) -> StoredAgent | None:
        require_id(id, "id")
        found = await self._agent(id)
        return found[0] if found else None

    async def _version_by_id(self, version_id: str) -> AgentVersion | None:
        e = self.expr("agent_version")
        items = await self.conn.query(**Partition("gsi3", f"AGENTVER#{esc(version_id)}").request(e))
        versions = await self.decode(items, AgentVersion)
        return versions[0] if versions else None

    async def _latest(self, agent_id: str) -> AgentVersion | None:
        e = self.expr("agent_version")
        e.equals("e", "agent_version")
        part = Partition(None, agent_key(agent_id)[0], *_VERSIONS)
        items = await self.conn.query(limit=1, **part.request(e, ScanIndexForward=False))
        versions = await self.decode(items, AgentVersion)
        return versions[0] if versions else None

    @operation
    async def get_by_id_resolved(
        self, *, id: str, status: str | None = None, version_id: str | None = None
    ) -> ResolvedAgent | None:
        check_resolve(id, status, version_id)
        found = await self._agent(id)
        return await resolve_agent(
            found[0] if found else None, status, version_id, self._version_by_id, lambda: self._latest(id)
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

        async def attempt() -> StoredAgent:
            found = await self._agent(id)
            if found is None:
                raise NotFoundError(f"Agent {id} not found", details={"agentId": id})
            agent, old = found
            apply_agent_update(agent, changes, patch)
            await self.conn.transact(versioned(await self._agent_items(agent), old))
            return agent

        return await optimistic(attempt)

    @operation
    async def delete(self, *, id: str) -> None:
        require_id(id, "id")
        part = Partition(None, agent_key(id)[0])
        items = await self.conn.query(**part.request(Expr(), ProjectionExpression="pk, sk"))
        # Versions first, the agent item last: an interrupted delete leaves the agent to delete again.
        items.sort(key=lambda i: i["sk"]["S"] == "AGENT")
        await self.conn.batch_write(deletes=keys_of(items[:-1]))
        await self.conn.batch_write(deletes=keys_of(items[-1:]))

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
        if status is not None:
            check_choice(status, AGENT_STATUSES, "status")
        filters = check_scalar_filter(metadata)

        def expr() -> Expr:
            e = self.expr("agent")
            if status is not None:
                e.equals("st", status)
            if author_id is not None:
                e.equals("aid", author_id)
            e.map_equals("meta", filters)
            return e

        part = Partition("gsi2" if column == "updatedAt" else "gsi1", "AGENTS")
        found = await read_page(self.conn, [part], expr, win, forward=dir_ == "ASC")
        total = found.total or 0
        return ListAgentsResult(
            agents=await self.decode(found.items, StoredAgent),
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
        agent_pk, agent_sk = agent_key(agent_id)

        async def attempt() -> AgentVersion:
            latest = await self._latest(agent_id)
            if latest is None and await self._agent(agent_id) is None:
                raise NotFoundError(f"Agent {agent_id} not found", details={"agentId": agent_id})
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
                    raise NotFoundError(f"Agent {agent_id} not found", details={"agentId": agent_id}) from exc
                if version_number is not None:
                    raise ConflictError(f"Agent {agent_id} already has version {version_number}") from exc
                raise  # someone took the next number first: read the latest again and retry
            return version

        return await optimistic(attempt)

    @operation
    async def get_version(self, *, id: str) -> AgentVersion | None:
        return await self._version_by_id(require_id(id, "id"))

    @operation
    async def get_version_by_number(self, *, agent_id: str, version_number: int) -> AgentVersion | None:
        require_id(agent_id, "agent_id")
        found = await self.read(agent_key(agent_id)[0], version_sk(version_number), "agent_version", AgentVersion)
        return found[0] if found else None

    @operation
    async def get_latest_version(self, *, agent_id: str) -> AgentVersion | None:
        return await self._latest(require_id(agent_id, "agent_id"))

    @operation
    async def list_versions(
        self, *, agent_id: str, page: int = 0, per_page: PerPage = 100, direction: str = "DESC"
    ) -> ListAgentVersionsResult:
        require_id(agent_id, "agent_id")
        win = window(page, per_page)
        dir_ = check_direction(direction)

        def expr() -> Expr:
            e = self.expr("agent_version")
            e.equals("e", "agent_version")
            return e

        part = Partition(None, agent_key(agent_id)[0], *_VERSIONS)
        found = await read_page(self.conn, [part], expr, win, forward=dir_ == "ASC")
        total = found.total or 0
        return ListAgentVersionsResult(
            versions=await self.decode(found.items, AgentVersion),
            **win.page_fields(total),
        )

    @operation
    async def delete_version(self, *, id: str) -> None:
        items = await self.conn.query(**Partition("gsi3", f"AGENTVER#{esc(require_id(id, 'id'))}").request(Expr()))
        await self.conn.batch_write(deletes=with_parts(items))

    @operation
    async def count_versions(self, *, agent_id: str) -> int:
        e = self.expr("agent_version")
        e.equals("e", "agent_version")
        return await self.conn.count(
            **Partition(None, agent_key(require_id(agent_id, "agent_id"))[0], *_VERSIONS).request(e)
        )
