// Test helper: Mastra's own @mastra/pg reads what mastra-storage wrote, and writes rows for it to read.
// Usage: node roundtrip.mjs <connectionString> <schemaName>   (prints JSON of what it read)
import { PostgresStore } from '@mastra/pg';

const [connectionString, schemaName] = process.argv.slice(2);
const store = new PostgresStore({ id: 'ts', connectionString, schemaName });
await store.init();
const memory = await store.getStore('memory');
const workflows = await store.getStore('workflows');
const scores = await store.getStore('scores');
const observability = await store.getStore('observability');

// Read what Python wrote.
const read = {
  thread: await memory.getThreadById({ threadId: 'py-thread' }),
  messages: (await memory.listMessages({ threadId: 'py-thread' })).messages,
  snapshot: await workflows.loadWorkflowSnapshot({ workflowName: 'py-wf', runId: 'py-run' }),
  scores: (await scores.listScoresByRunId({ runId: 'py-run', pagination: { page: 0, perPage: 10 } })).scores,
  trace: await observability.getTrace({ traceId: 'py-trace' }),
};

// Write rows for Python to read.
const at = new Date('2026-01-02T03:04:05.678Z');
await memory.saveThread({
  thread: { id: 'ts-thread', resourceId: 'ts-user', title: 'From TypeScript', metadata: { origin: 'ts' }, createdAt: at, updatedAt: at },
});
await memory.saveMessages({
  messages: [1, 2].map((n) => ({
    id: `ts-message-${n}`, threadId: 'ts-thread', resourceId: 'ts-user', role: n === 1 ? 'user' : 'assistant', type: 'v2',
    createdAt: new Date(at.getTime() + n * 1000),
    content: { format: 2, parts: [{ type: 'text', text: `ts text ${n}` }], content: `ts text ${n}`, metadata: { n } },
  })),
});
await workflows.persistWorkflowSnapshot({
  workflowName: 'ts-wf', runId: 'ts-run', resourceId: 'ts-user',
  snapshot: { runId: 'ts-run', status: 'suspended', context: { input: { x: 1 } }, suspendedPaths: { step: [0] } },
});
await scores.saveScore({
  scorerId: 'ts-scorer', entityId: 'ts-agent', entityType: 'AGENT', runId: 'ts-run', score: 0.25, reason: 'ts reason',
  scorer: { id: 'ts-scorer' }, entity: { id: 'ts-agent' }, source: 'TEST', input: [{ role: 'user' }], output: { text: 'out' },
});
await observability.batchCreateSpans({
  records: [
    { traceId: 'ts-trace', spanId: 'ts-root', parentSpanId: null, name: 'ts root', spanType: 'agent_run', isEvent: false,
      startedAt: at, endedAt: new Date(at.getTime() + 500), attributes: { a: 1 }, metadata: { m: 'x' } },
    { traceId: 'ts-trace', spanId: 'ts-child', parentSpanId: 'ts-root', name: 'ts child', spanType: 'tool_call', isEvent: false,
      startedAt: new Date(at.getTime() + 100), endedAt: new Date(at.getTime() + 200), input: { q: 1 } },
  ],
});
await store.close();
console.log(JSON.stringify(read));
