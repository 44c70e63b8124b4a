"""Conformance tests for ``AgentsStorage`` (reference §10 agents/index.ts)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ..domains import AgentsStorage
from ..errors import ConflictError, NotFoundError, ValidationError
from .samples import sample_agent


class AgentsConformance:
    """Behaviour every ``AgentsStorage`` must have; needs a ``backend`` fixture (see package docs)."""

    @pytest.fixture
    async def agents(self, backend: Any) -> AgentsStorage:
        store: AgentsStorage = await backend.get_store("agents")
        return store

    async def test_create_writes_a_thin_agent_and_version_one(self, agents: AgentsStorage) -> None:
        spec = sample_agent()
        agent = await agents.create(agent=spec)
        assert (agent.id, agent.status, agent.active_version_id, agent.favorite_count) == (
            spec["id"],
            "draft",
            None,
            0,
        )
        assert agent.created_at.tzinfo is not None and agent.updated_at == agent.created_at
        assert await agents.get_by_id(id=spec["id"]) == agent
        assert await agents.count_versions(agent_id=spec["id"]) == 1
        version = await agents.get_latest_version(agent_id=spec["id"])
        assert version is not None and version.version_number == 1 and version.change_message == "Initial version"
        assert set(version.changed_fields or []) == {"name", "instructions", "model"}
        resolved = await agents.get_by_id_resolved(id=spec["id"])
        assert resolved is not None
        assert (resolved.name, resolved.instructions, resolved.model) == (
            spec["name"],
            spec["instructions"],
            spec["model"],
        )
        assert resolved.resolved_version_id == version.id

    async def test_create_with_every_optional_field(self, agents: AgentsStorage) -> None:
        spec = sample_agent(
            description="desc",
            instructions=[
                {"type": "text", "content": "Be brief."},
                {"type": "prompt_block_ref", "id": "pb-1"},
            ],
            tools={"search": {"description": "web"}},
            default_options={"maxSteps": 5},
            workflows={"wf": {}},
            agents={"helper": {}},
            input_processors=[{"id": "p1"}],
            output_processors=[{"id": "p2"}],
            memory={"lastMessages": 10},
            scorers={"s": {"sampling": {"type": "ratio", "rate": 0.5}}},
            request_context_schema={"type": "object"},
            skills_format="markdown",
            durable={"maxSteps": 3},
            author_id="author-1",
            metadata={"team": "support", "large": ["x" * 100] * 50},
        )
        agent = await agents.create(agent=spec)
        assert agent.author_id == "author-1" and agent.visibility == "private"
        assert agent.metadata == spec["metadata"]
        resolved = await agents.get_by_id_resolved(id=spec["id"])
        assert resolved is not None
        for name in (
            "description",
            "instructions",
            "tools",
            "default_options",
            "workflows",
            "agents",
            "input_processors",
            "output_processors",
            "memory",
            "scorers",
            "request_context_schema",
            "skills_format",
            "durable",
        ):
            assert getattr(resolved, name) == spec[name], name

    async def test_minimal_agent_and_visibility(self, agents: AgentsStorage) -> None:
        plain = await agents.create(agent=sample_agent())
        assert plain.visibility is None and plain.metadata is None
        resolved = await agents.get_by_id_resolved(id=plain.id)
        assert resolved is not None and resolved.description is None and resolved.tools is None
        public = await agents.create(agent=sample_agent(visibility="public", metadata={}))
        assert public.visibility == "public" and public.metadata == {}

    async def test_invalid_or_duplicate_agent(self, agents: AgentsStorage) -> None:
        spec = sample_agent()
        await agents.create(agent=spec)
        with pytest.raises(ConflictError):
            await agents.create(agent=spec)
        for missing in ("name", "instructions", "model"):
            broken = sample_agent()
            del broken[missing]
            with pytest.raises(ValidationError):
                await agents.create(agent=broken)
            assert await agents.get_by_id(id=broken["id"]) is None
        with pytest.raises(ValidationError):
            await agents.create(agent=sample_agent(id=""))
        assert await agents.count_versions(agent_id=spec["id"]) == 1

    async def test_missing_agent(self, agents: AgentsStorage) -> None:
        assert await agents.get_by_id(id="missing") is None
        assert await agents.get_by_id_resolved(id="missing") is None
        with pytest.raises(NotFoundError):
            await agents.update(id="missing", metadata={"a": 1})
        with pytest.raises(NotFoundError):
            await agents.create_version(agent_id="missing", config={"name": "x"})

    async def test_versions_and_resolution(self, agents: AgentsStorage) -> None:
        agent = await agents.create(agent=sample_agent())
        v2 = await agents.create_version(agent_id=agent.id, config={"instructions": "Version two"}, change_message="v2")
        assert (v2.version_number, v2.changed_fields, v2.change_message, v2.name) == (
            2,
            ["instructions"],
            "v2",
            "Support agent",
        )
        v3 = await agents.create_version(agent_id=agent.id, config={"instructions": "Version three"})
        latest = await agents.get_by_id_resolved(id=agent.id)
        assert latest is not None and latest.instructions == "Version three" and latest.resolved_version_id == v3.id
        await agents.update(id=agent.id, active_version_id=v2.id)
        published = await agents.get_by_id_resolved(id=agent.id)
        assert published is not None and published.instructions == "Version two" and published.status == "draft"
        draft = await agents.get_by_id_resolved(id=agent.id, status="draft")
        assert draft is not None and draft.instructions == "Version three"
        v1 = await agents.get_version_by_number(agent_id=agent.id, version_number=1)
        assert v1 is not None
        pinned = await agents.get_by_id_resolved(id=agent.id, version_id=v1.id)
        assert pinned is not None and pinned.instructions == "Be helpful."
        assert await agents.get_version(id=v2.id) == v2
        assert await agents.get_version(id="missing") is None

    async def test_list_and_delete_versions(self, agents: AgentsStorage) -> None:
        agent = await agents.create(agent=sample_agent())
        for i in range(4):
            await agents.create_version(agent_id=agent.id, config={"instructions": f"v{i + 2}"})
        desc = await agents.list_versions(agent_id=agent.id, per_page=2)
        assert [v.version_number for v in desc.versions] == [5, 4] and (desc.total, desc.has_more) == (
            5,
            True,
        )
        asc = await agents.list_versions(agent_id=agent.id, direction="ASC", per_page=False)
        assert [v.version_number for v in asc.versions] == [1, 2, 3, 4, 5]
        await agents.delete_version(id=asc.versions[-1].id)
        latest = await agents.get_latest_version(agent_id=agent.id)
        assert latest is not None and latest.version_number == 4
        assert await agents.count_versions(agent_id=agent.id) == 4
        with pytest.raises(ConflictError):
            await agents.create_version(agent_id=agent.id, config={}, version_number=2)
        explicit = await agents.create_version(agent_id=agent.id, config={}, version_number=10)
        assert explicit.version_number == 10

    async def test_concurrent_versions_get_distinct_numbers(self, agents: AgentsStorage) -> None:
        agent = await agents.create(agent=sample_agent())
        versions = await asyncio.gather(
            *(agents.create_version(agent_id=agent.id, config={"instructions": f"c{i}"}) for i in range(10))
        )
        assert sorted(v.version_number for v in versions) == list(range(2, 12))

    async def test_update_merges_metadata_and_ignores_config(self, agents: AgentsStorage) -> None:
        agent = await agents.create(agent=sample_agent(metadata={"a": 1}))
        updated = await agents.update(id=agent.id, metadata={"b": 2}, status="published", visibility="public")
        assert updated.metadata == {"a": 1, "b": 2} and updated.status == "published" and updated.visibility == "public"
        assert updated.updated_at > agent.updated_at
        assert await agents.get_by_id(id=agent.id) == updated
        assert await agents.count_versions(agent_id=agent.id) == 1
        with pytest.raises(ValidationError):
            await agents.update(id=agent.id, status="deleted")
        with pytest.raises(TypeError):
            await agents.update(id=agent.id, instructions="nope")  # type: ignore[call-arg]

    async def test_concurrent_metadata_updates(self, agents: AgentsStorage) -> None:
        agent = await agents.create(agent=sample_agent(metadata={}))
        await asyncio.gather(*(agents.update(id=agent.id, metadata={f"k{i}": i}) for i in range(5)))
        fetched = await agents.get_by_id(id=agent.id)
        assert fetched is not None and fetched.metadata == {f"k{i}": i for i in range(5)}

    async def test_delete_is_idempotent_and_removes_versions(self, agents: AgentsStorage) -> None:
        agent = await agents.create(agent=sample_agent())
        await agents.create_version(agent_id=agent.id, config={"instructions": "two"})
        await agents.delete(id=agent.id)
        assert await agents.get_by_id(id=agent.id) is None
        assert await agents.count_versions(agent_id=agent.id) == 0
        await agents.delete(id=agent.id)
        await agents.delete(id="never-existed")

    async def test_list_agents(self, agents: AgentsStorage) -> None:
        empty = await agents.list()
        assert (empty.agents, empty.total, empty.has_more) == ([], 0, False)
        created = [await agents.create(agent=sample_agent(author_id=f"a{i % 2}", metadata={"n": i})) for i in range(15)]
        first = await agents.list(per_page=5)
        assert (len(first.agents), first.total, first.has_more) == (5, 15, True)
        everything = await agents.list(per_page=False)
        assert (len(everything.agents), everything.per_page, everything.has_more) == (15, False, False)
        created_desc = [a.id for a in sorted(created, key=lambda a: (a.created_at, a.id), reverse=True)]
        assert [a.created_at for a in everything.agents] == sorted((a.created_at for a in created), reverse=True)
        assert {a.id for a in everything.agents} == set(created_desc)
        asc = await agents.list(direction="ASC", per_page=False)
        assert [a.created_at for a in asc.agents] == sorted(a.created_at for a in created)
        assert (await agents.list(status="draft")).total == 15
        assert (await agents.list(status="published")).total == 0
        assert (await agents.list(author_id="a1")).total == 7
        assert [a.id for a in (await agents.list(metadata={"n": 3})).agents] == [created[3].id]
        with pytest.raises(ValidationError):
            await agents.list(metadata={"bad key": 1})
