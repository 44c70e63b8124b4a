// The Mastra side of benchmarks/vs_mastra: the workload run by Mastra's own TypeScript stores.
// Usage: node mastra_side.mjs '<json plan>'  (the plan comes from run.py; see workload.py for the operations)
// Opens the store (and seeds it when plan.seed, untimed), prints "ready", then serves run.py: each
// line read names an operation to time, answered by one JSON line {"op name": ops per second}.
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';

const plan = JSON.parse(process.argv[2]);
const p = plan.prefix;
const base = Date.parse(plan.base);
const at = (ms) => new Date(base + ms);

async function openStore() {
  if (plan.backend === 'libsql') {
    const { LibSQLStore } = await import('@mastra/libsql');
    return new LibSQLStore({ id: 'ts', url: plan.url });
  }
  if (plan.backend === 'pg') {
    const { PostgresStore } = await import('@mastra/pg');
    return new PostgresStore({ id: 'ts', connectionString: plan.url, schemaName: plan.schema });
  }
  const { DynamoDBStore } = await import('@mastra/dynamodb');
  return new DynamoDBStore({
    name: 'ts',
    config: {
      id: 'ts', tableName: plan.table, region: 'us-east-1', endpoint: plan.url,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    },
  });
}

const snapshot = (runId) => ({
  runId, status: 'suspended', value: {}, activePaths: [], activeStepsPath: {}, suspendedPaths: { 'step-19': [19] },
  resumeLabels: {}, waitingPaths: {}, serializedStepGraph: [], timestamp: base,
  context: Object.fromEntries(Array.from({ length: 20 }, (_, k) => [`step-${k}`, { status: 'success', output: { value: k, text: 'x'.repeat(200) } }])),
});
const message = (id, threadId, ms) => ({
  id, threadId, resourceId: `${p}user`, role: 'user', type: 'v2', createdAt: at(ms),
  content: { format: 2, parts: [{ type: 'text', text: `message ${id} `.repeat(8) }] },
});
const score = (scorerId) => ({
  scorerId, entityId: 'agent', entityType: 'AGENT', runId: 'run', score: 0.9, scorer: { id: scorerId },
  entity: { id: 'agent' }, source: 'LIVE', input: { q: 'hi' }, output: { a: 'hello' },
});
const spans = (traceId, ms) => Array.from({ length: 10 }, (_, k) => ({
  traceId, spanId: `s${k}`, parentSpanId: k === 0 ? null : 's0', name: `span ${k}`, spanType: 'tool_call',
  isEvent: false, startedAt: at(ms + k), endedAt: at(ms + 1000), attributes: { k }, input: { args: [k] },
  output: { ok: true },
}));

async function seed(s) {
  const { memory, workflows, scores, observability } = s;
  for (let i = 0; i < plan.threads; i++) {
    await memory.saveThread({ thread: { id: `${p}thread-${i}`, resourceId: `${p}user`, title: `thread ${i}`, metadata: { i }, createdAt: at(i), updatedAt: at(i) } });
  }
  for (let i = 0; i < plan.messages; i += 100) {
    await memory.saveMessages({ messages: Array.from({ length: 100 }, (_, k) => message(`${p}msg-${i + k}`, `${p}thread-0`, (i + k) * 10)) });
  }
  for (let i = 0; i < plan.resources; i++) {
    await memory.saveResource({ resource: { id: `${p}res-${i}`, workingMemory: 'start', metadata: {}, createdAt: at(i), updatedAt: at(i) } });
  }
  for (let i = 0; i < plan.runs; i++) {
    await workflows.persistWorkflowSnapshot({ workflowName: `${p}wf`, runId: `${p}run-${i}`, snapshot: snapshot(`${p}run-${i}`), createdAt: at(i), updatedAt: at(i) });
  }
  for (let i = 0; i < plan.scores; i++) await scores.saveScore(score(`${p}scorer`));
  if (observability) {
    for (let i = 0; i < plan.traces; i++) await observability.batchCreateSpans({ records: spans(`${p}trace-${i}`, i * 1000) });
  }
}

function operations(s) {
  const { memory, workflows, scores, observability } = s;
  const r = `${p}r${plan.round}-`;
  const ops = {
    save_thread: (i) => memory.saveThread({ thread: { id: `${r}st-${i}`, resourceId: `${p}user2`, title: 'new', metadata: { i }, createdAt: at(i), updatedAt: at(i) } }),
    save_messages_10: (i) => memory.saveMessages({ messages: Array.from({ length: 10 }, (_, k) => message(`${r}m-${i}-${k}`, `${p}thread-1`, i * 10 + k)) }),
    list_last_20_messages: () => memory.listMessages({ threadId: `${p}thread-0`, perPage: 20, page: 0, orderBy: { field: 'createdAt', direction: 'DESC' } }),
    list_messages_with_include: (i) => memory.listMessages({
      threadId: `${p}thread-0`, perPage: 20, page: 0, orderBy: { field: 'createdAt', direction: 'DESC' },
      include: [{ id: `${p}msg-${100 + (i % (plan.messages - 200))}`, withPreviousMessages: 5, withNextMessages: 5 }],
    }),
    get_thread_by_id: (i) => memory.getThreadById({ threadId: `${p}thread-${i % plan.threads}` }),
    list_threads_page: () => memory.listThreads({ filter: { resourceId: `${p}user` }, page: 0, perPage: 20 }),
    update_working_memory: (i) => memory.updateResource({ resourceId: `${p}res-${i % plan.resources}`, workingMemory: `working memory ${i}` }),
    persist_snapshot: (i) => workflows.persistWorkflowSnapshot({ workflowName: `${p}wf2`, runId: `${r}run-${i}`, snapshot: snapshot(`${r}run-${i}`) }),
    load_snapshot: (i) => workflows.loadWorkflowSnapshot({ workflowName: `${p}wf`, runId: `${p}run-${i % plan.runs}` }),
    list_workflow_runs_page: () => workflows.listWorkflowRuns({ workflowName: `${p}wf`, page: 0, perPage: 20 }),
    list_workflow_runs_pages: (i) => workflows.listWorkflowRuns({ workflowName: `${p}wf`, page: i % 16, perPage: 20 }),
    save_score: () => scores.saveScore(score(`${p}scorer2`)),
    list_scores_by_scorer: () => scores.listScoresByScorerId({ scorerId: `${p}scorer`, pagination: { page: 0, perPage: 20 } }),
  };
  if (observability) {
    ops.batch_create_spans = (i) => observability.batchCreateSpans({ records: spans(`${r}trace-${i}`, i) });
    ops.get_trace = (i) => observability.getTrace({ traceId: `${p}trace-${i % plan.traces}` });
  }
  return ops;
}

// n calls, or as many as fit in plan.seconds (slow operations stay bounded); completed calls per second.
async function timed(n, concurrency, op) {
  const start = performance.now();
  const deadline = start + plan.seconds * 1000;
  let done = 0;
  await Promise.all(Array.from({ length: concurrency }, async (_, k) => {
    for (let i = k; i < n && performance.now() < deadline; i += concurrency) {
      await op(i);
      done += 1;
    }
  }));
  return done / ((performance.now() - start) / 1000);
}

const store = await openStore();
await store.init();
const s = {
  memory: await store.getStore('memory'), workflows: await store.getStore('workflows'),
  scores: await store.getStore('scores'), observability: await store.getStore('observability').catch(() => undefined),
};
if (plan.seed) await seed(s);
const ops = operations(s);

async function measure(name) {
  if (name === 'init') {
    const start = performance.now();
    for (let i = 0; i < plan.inits; i++) {
      const fresh = await openStore();
      await fresh.init();
      await fresh.close?.();
    }
    return plan.inits / ((performance.now() - start) / 1000);
  }
  if (!ops[name]) return null;
  await ops[name](0); // warm-up call, not timed
  return timed(plan.n[name], plan.concurrency, ops[name]);
}

console.log('ready');
for await (const name of createInterface({ input: process.stdin })) {
  console.log(JSON.stringify({ [name]: await measure(name) }));
}
await store.close?.();
process.exit(0); // a driver's idle handles must not keep the process alive
