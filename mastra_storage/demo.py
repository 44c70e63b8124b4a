"""``make demo``: what an agent runtime does with its storage, on the embedded default.

It composes ``MastraStorage`` over ``file:./mastra.db``, saves a thread and a conversation, suspends
a workflow and resumes it from a new process, records scores and a trace, creates a stored agent and
a second version, and prints what is stored. Run it again: it adds another session.

    python -m mastra_storage.demo [--url file:./mastra.db]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from datetime import timedelta

from .composite import MastraStorage
from .core.codec import utc_now
from .libsql import LibSQLStore
from .types import Message, ScorePayload, SpanRecord, StorageThread

AGENT_ID = "demo-support-agent"
WORKFLOW = "refund-approval"


def _text(thread: StorageThread, role: str, text: str, offset_ms: int) -> Message:
    return Message(
        id=str(uuid.uuid4()),
        role=role,
        content={"format": 2, "parts": [{"type": "text", "text": text}], "content": text},
        created_at=utc_now() + timedelta(milliseconds=offset_ms),
        thread_id=thread.id,
        resource_id=thread.resource_id,
    )


async def session(url: str) -> None:
    async with MastraStorage(id="demo", default=LibSQLStore(id="embedded", url=url)) as storage:
        memory, workflows = await storage.get_store("memory"), await storage.get_store("workflows")
        scores, observability = await storage.get_store("scores"), await storage.get_store("observability")
        agents = await storage.get_store("agents")
        assert memory and workflows and scores and observability and agents

        # 1. A conversation in a thread of user "alice".
        thread = await memory.save_thread(
            thread=StorageThread(id=f"thread-{uuid.uuid4().hex[:8]}", resource_id="alice", title="Refund request")
        )
        turns = [
            ("user", "Hi, I'd like a refund for order 1042."),
            ("assistant", "Sure - I started the refund approval for order 1042."),
            ("user", "Thanks!"),
        ]
        await memory.save_messages(messages=[_text(thread, role, text, i) for i, (role, text) in enumerate(turns)])
        await memory.update_resource(
            resource_id="alice", working_memory="# Alice\n- prefers email", metadata={"tier": "gold"}
        )

        # 2. A workflow run that suspends, waiting for a human approval...
        run_id = f"run-{uuid.uuid4().hex[:8]}"
        await workflows.persist_workflow_snapshot(
            workflow_name=WORKFLOW,
            run_id=run_id,
            resource_id="alice",
            snapshot={
                "runId": run_id,
                "status": "suspended",
                "context": {"input": {"order": 1042}, "approve": {"status": "suspended", "payload": {"order": 1042}}},
                "suspendedPaths": {"approve": [0]},
                "activePaths": [],
                "value": {},
            },
        )
        # ...and is resumed by another process, as after a restart.
        worker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mastra_storage.demo",
            "--url",
            url,
            "--resume",
            run_id,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await worker.communicate()
        if worker.returncode != 0:
            raise SystemExit(f"the resuming process failed:\n{err.decode()}")
        final = await workflows.load_workflow_snapshot(workflow_name=WORKFLOW, run_id=run_id)

        # 3. Scores of the answer, and the trace of the agent run.
        for scorer, value in (("answer-relevancy", 0.92), ("toxicity", 0.0)):
            await scores.save_score(
                score=ScorePayload(
                    scorer_id=scorer,
                    entity_id=AGENT_ID,
                    entity_type="AGENT",
                    run_id=run_id,
                    score=value,
                    scorer={"id": scorer, "name": scorer},
                    entity={"id": AGENT_ID},
                    source="LIVE",
                    input=turns[0][1],
                    output={"text": turns[1][1]},
                    thread_id=thread.id,
                    resource_id="alice",
                )
            )
        trace_id, start = uuid.uuid4().hex, utc_now()
        root = SpanRecord(
            trace_id=trace_id,
            span_id="root",
            name="support-agent run",
            span_type="agent_run",
            started_at=start,
            ended_at=start + timedelta(milliseconds=840),
            entity_type="agent",
            entity_id=AGENT_ID,
            thread_id=thread.id,
        )
        children = [
            SpanRecord(
                trace_id=trace_id,
                span_id="llm",
                parent_span_id="root",
                name="model call",
                span_type="model_generation",
                started_at=start + timedelta(milliseconds=10),
                ended_at=start + timedelta(milliseconds=610),
                attributes={"model": "gpt-4o", "tokens": 312},
            ),
            SpanRecord(
                trace_id=trace_id,
                span_id="tool",
                parent_span_id="root",
                name="start-refund",
                span_type="tool_call",
                started_at=start + timedelta(milliseconds=620),
                ended_at=start + timedelta(milliseconds=830),
                input={"order": 1042},
            ),
        ]
        await observability.batch_create_spans(spans=[root, *children])

        # 4. A stored agent, edited at run time into a second version.
        if await agents.get_by_id(id=AGENT_ID) is None:
            await agents.create(
                agent={
                    "id": AGENT_ID,
                    "name": "Support agent",
                    "instructions": "Help customers politely.",
                    "model": {"provider": "openai", "name": "gpt-4o"},
                }
            )
        version = await agents.create_version(
            agent_id=AGENT_ID,
            config={"instructions": "Help customers politely. Offer refunds under $50."},
            change_message="allow small refunds",
        )
        await agents.update(id=AGENT_ID, status="published", active_version_id=version.id)
        resolved = await agents.get_by_id_resolved(id=AGENT_ID)

        # What is stored now.
        threads = await memory.list_threads(resource_id="alice", per_page=False)
        messages = await memory.list_messages(thread_id=thread.id)
        runs = await workflows.list_workflow_runs(workflow_name=WORKFLOW)
        relevancy = await scores.list_scores_by_scorer_id(scorer_id="answer-relevancy", per_page=1)
        trace = await observability.get_trace(trace_id=trace_id)
        traces = await observability.list_traces(per_page=1)
        print(f"storage: {url}")
        print(f"memory: {threads.total} thread(s) for alice; this one holds {messages.total} messages:")
        for m in messages.messages:
            print(f"  {m.role:>9}: {m.content['content']}")
        print(
            f"workflow: run {run_id} resumed in another process -> status {final and final['status']!r}, "
            f"steps {sorted((final or {}).get('context', {}))}; {runs.total} run(s) of {WORKFLOW!r} stored"
        )
        print(f"scores: {relevancy.total} answer-relevancy score(s), latest {relevancy.scores[0].score:.2f}")
        span_names = [s.name for s in (trace.spans if trace else [])]
        print(
            f"trace: {len(span_names)} spans ({', '.join(span_names)}); "
            f"{traces.total} trace(s) stored, newest is {traces.spans[0].status!r}"
        )
        print(
            f"agent: {AGENT_ID} is {resolved and resolved.status} at version {version.version_number} "
            f"of {await agents.count_versions(agent_id=AGENT_ID)}: {resolved and resolved.instructions!r}"
        )


async def resume(url: str, run_id: str) -> None:
    """The other process: approve the suspended step and finish the run, only if still suspended."""
    async with MastraStorage(id="worker", default=LibSQLStore(id="embedded", url=url)) as storage:
        workflows = await storage.get_store("workflows")
        assert workflows is not None
        snapshot = await workflows.load_workflow_snapshot(workflow_name=WORKFLOW, run_id=run_id)
        if snapshot is None or snapshot["status"] != "suspended":
            raise SystemExit(f"run {run_id} is not suspended")
        await workflows.update_workflow_results(
            workflow_name=WORKFLOW,
            run_id=run_id,
            step_id="approve",
            result={"status": "success", "output": {"approved": True}},
            request_context={"approver": "bob"},
        )
        await workflows.update_workflow_state(
            workflow_name=WORKFLOW,
            run_id=run_id,
            updates={"status": "success", "suspendedPaths": {}},
            expected_status="suspended",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default="file:./mastra.db")
    parser.add_argument("--resume", metavar="RUN_ID", help=argparse.SUPPRESS)
    args = parser.parse_args()
    asyncio.run(resume(args.url, args.resume) if args.resume else session(args.url))


if __name__ == "__main__":
    main()
