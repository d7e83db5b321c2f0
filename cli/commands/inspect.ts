/**
 * `dags pause|unpause|show`, `tasks states-for-dag-run`, `xcom get|list`: a DAG's switch and
 * graph, and what one run did.
 */
import { loadConfig, queries, UpdraftError, type Dag, type Database } from '../../core/index.ts';
import { openEnv, loadBag, printJson, table, out } from '../env.ts';
import { formatSeconds } from './dags.ts';

export async function dagsSetPaused(dagId: string, paused: boolean, json: boolean): Promise<void> {
  const { config, database } = await openEnv();
  try {
    if (!(await queries.dags.setPaused(database.db, dagId, paused))) {
      // No scheduler has synced the DAG yet: sync the folder, then it exists (or the DAG id is wrong).
      const bag = await loadBag(config);
      bag.get(dagId);
      await database.db.transaction((tx) => queries.dags.syncDagBag(tx, bag.dags.values(), bag.errors));
      await queries.dags.setPaused(database.db, dagId, paused);
    }
    if (json) printJson({ dagId, paused });
    else out(`DAG ${dagId} ${paused ? 'paused: no new runs start (running tasks finish)' : 'unpaused'}\n`);
  } finally {
    await database.close();
  }
}

export async function dagsShow(dagId: string, dot: boolean, json: boolean): Promise<void> {
  const dag = (await loadBag(loadConfig())).get(dagId);
  const tasks = topological(dag);
  if (json) printJson({ dagId, tasks: tasks.map((t) => ({ taskId: t, downstream: [...dag.tasks.get(t)!.downstreamIds].sort() })) });
  else out(dot ? toDot(dag, tasks) : toText(dag, tasks));
}

/** Task ids with every upstream before its downstream (ties in definition order). */
function topological(dag: Dag): string[] {
  const pending = new Map([...dag.tasks.values()].map((t) => [t.taskId, t.upstreamIds.size]));
  const ready = [...pending].filter(([, n]) => n === 0).map(([id]) => id);
  const order: string[] = [];
  while (ready.length) {
    const id = ready.shift()!;
    order.push(id);
    for (const d of dag.tasks.get(id)!.downstreamIds) {
      const left = pending.get(d)! - 1;
      pending.set(d, left);
      if (left === 0) ready.push(d);
    }
  }
  return order;
}

function toText(dag: Dag, order: string[]): string {
  const width = Math.max(...order.map((t) => t.length), 0);
  const lines = order.map((t) => {
    const down = [...dag.tasks.get(t)!.downstreamIds].sort();
    return down.length ? `${t.padEnd(width)}  -> ${down.join(', ')}` : t;
  });
  return `${dag.dagId}: ${order.length} task(s)${dag.schedule ? `, schedule ${dag.schedule}` : ''}\n${lines.join('\n')}\n`;
}

const quote = (s: string) => `"${s.replace(/["\\]/g, '\\$&')}"`;

function toDot(dag: Dag, order: string[]): string {
  const lines = [`digraph ${quote(dag.dagId)} {`, '  rankdir=LR;', '  node [shape=box, style="rounded"];'];
  for (const t of order) lines.push(`  ${quote(t)} [label=${quote(`${t}\n${dag.tasks.get(t)!.operatorName}`)}];`);
  for (const t of order) for (const d of [...dag.tasks.get(t)!.downstreamIds].sort()) lines.push(`  ${quote(t)} -> ${quote(d)};`);
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

async function findRun(database: Database, dagId: string, runId: string) {
  const [run] = await queries.dagRuns.getRun(database.db, runId, dagId);
  if (!run) throw new UpdraftError(`DAG "${dagId}" has no run "${runId}"; see \`updraft runs list --dag-id ${dagId}\``);
  return run;
}

export async function statesForDagRun(dagId: string, runId: string, json: boolean): Promise<void> {
  const { database } = await openEnv();
  try {
    const run = await findRun(database, dagId, runId);
    const rows = (await queries.dagRuns.runTaskInstances(database.db, run.id)).map((t) => ({
      taskId: t.taskId, mapIndex: t.mapIndex, state: t.state, tryNumber: t.tryNumber, startDate: t.startDate, endDate: t.endDate, duration: t.duration,
    }));
    if (json) printJson({ dagId, runId, state: run.state, taskInstances: rows });
    else out(`${table(rows.map((r) => ({ ...r, duration: formatSeconds(r.duration) })), ['taskId', 'mapIndex', 'state', 'tryNumber', 'startDate', 'endDate', 'duration'])}\n`);
  } finally {
    await database.close();
  }
}

export async function xcomGet(dagId: string, runId: string, taskId: string, key: string, mapIndex: number, json: boolean): Promise<void> {
  const { database } = await openEnv();
  try {
    const run = await findRun(database, dagId, runId);
    const rows = await queries.xcom.listXComs(database.db, run.id, taskId);
    const row = rows.find((r) => r.key === key && r.mapIndex === mapIndex);
    if (!row) {
      const have = rows.map((r) => `${r.key}${r.mapIndex >= 0 ? `[${r.mapIndex}]` : ''}`);
      throw new UpdraftError(`no XCom "${key}"${mapIndex >= 0 ? ` at map index ${mapIndex}` : ''} for task "${taskId}" in run "${runId}"${have.length ? `; it has ${have.join(', ')}` : ''}`);
    }
    if (json) printJson({ dagId, runId, taskId, mapIndex, key, value: row.value });
    else out(`${typeof row.value === 'string' ? row.value : JSON.stringify(row.value, null, 2)}\n`);
  } finally {
    await database.close();
  }
}

export async function xcomList(dagId: string, runId: string, taskId: string | undefined, json: boolean): Promise<void> {
  const { database } = await openEnv();
  try {
    const run = await findRun(database, dagId, runId);
    const rows = await queries.xcom.listXComs(database.db, run.id, taskId);
    if (json) printJson(rows);
    else {
      const preview = (v: unknown) => { const s = JSON.stringify(v) ?? 'null'; return s.length > 60 ? `${s.slice(0, 57)}...` : s; };
      out(`${table(rows.map((r) => ({ ...r, value: preview(r.value) })), ['taskId', 'mapIndex', 'key', 'value', 'createdAt'])}\n`);
    }
  } finally {
    await database.close();
  }
}
