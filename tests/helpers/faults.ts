/**
 * Shared by the fault suites and the reliability benchmark: the `faults` fixture DAG run by
 * real service processes, and the audit of a finished run that every fault must pass. Nothing
 * lost (every TI succeeded, one return value each), nothing run twice (tries and resumes are
 * counted from history and logs), and no stale write (every XCom carries the try that made it,
 * which must be the TI's last).
 */
import { fileURLToPath } from 'node:url';
import { appendFileSync } from 'node:fs';
import postgres from 'postgres';

export const FAULTS_DAGS = fileURLToPath(new URL('../fixtures/faults', import.meta.url));
export const READY = /updraft (scheduler|worker|triggerer) (\S+):/;

export interface FaultSizes {
  items: number;
  itemMs: number;
  waitMs: number;
  /** Item i waits waitMs + i × spreadMs (default 1). */
  spreadMs?: number;
}

export function faultEnv(databaseUrl: string, sizes: FaultSizes, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl, UPDRAFT_DAGS_FOLDER: FAULTS_DAGS,
    FAULT_ITEMS: String(sizes.items), FAULT_ITEM_MS: String(sizes.itemMs), FAULT_WAIT_MS: String(sizes.waitMs),
    FAULT_WAIT_SPREAD_MS: String(sizes.spreadMs ?? 1), ...extra,
  };
}

export interface TiAudit {
  id: number;
  taskId: string;
  mapIndex: number;
  state: string;
  tryNumber: number;
  /** History rows (one per finished try). */
  tries: number;
  returnValues: number;
  /** The try recorded inside the return value (work and wait), null for others. */
  valueTry: number | null;
  /** "resumed at" lines in the TI's last try (wait only). */
  resumes: number;
  /** Resume start minus the trigger's moment, ms (wait only). */
  resumeLagMs: number | null;
}

export interface RunAudit {
  runState: string | null;
  durationMs: number | null;
  tis: TiAudit[];
  triggersLeft: number;
}

export async function auditRun(url: string, runId: string): Promise<RunAudit> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const [run] = await sql`select id, state, extract(epoch from (end_date - start_date)) * 1000 as ms from dag_runs where run_id = ${runId}`;
    if (!run) return { runState: null, durationMs: null, tis: [], triggersLeft: 0 };
    const rows = await sql`
      select ti.id, ti.task_id, ti.map_index, ti.state, ti.try_number,
        (select count(*)::int from task_instance_history h where h.ti_id = ti.id) as tries,
        (select count(*)::int from xcom x where x.run_pk = ti.run_pk and x.task_id = ti.task_id and x.map_index = ti.map_index and x.key = 'return_value') as return_values,
        (select (x.value ->> 'try')::int from xcom x where x.run_pk = ti.run_pk and x.task_id = ti.task_id and x.map_index = ti.map_index and x.key = 'return_value') as value_try,
        (select count(*)::int from logs l where l.ti_id = ti.id and l.try_number = ti.try_number and l.message like 'resumed at %') as resumes,
        (select extract(epoch from (l.ts - (substring(l.message from 12))::timestamptz)) * 1000 from logs l
          where l.ti_id = ti.id and l.try_number = ti.try_number and l.message like 'resumed at %' order by l.id limit 1) as lag_ms
      from task_instances ti where ti.run_pk = ${run.id} order by ti.task_id, ti.map_index`;
    const [left] = await sql`select count(*)::int as n from triggers`;
    return {
      runState: run.state, durationMs: run.ms === null ? null : Number(run.ms),
      tis: rows.map((r) => ({
        id: Number(r.id), taskId: r.task_id, mapIndex: r.map_index, state: r.state, tryNumber: r.try_number, tries: r.tries,
        returnValues: r.return_values, valueTry: r.value_try, resumes: r.resumes, resumeLagMs: r.lag_ms === null ? null : Number(r.lag_ms),
      })),
      triggersLeft: left.n,
    };
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/**
 * What went wrong in a finished run, as readable lines (empty: nothing). `extraTries` names TIs
 * that the fault was meant to cost one try (a zombie retried elsewhere); all others must have
 * succeeded in exactly one.
 */
export function auditProblems(audit: RunAudit, sizes: FaultSizes, extraTries: ReadonlySet<number> = new Set()): string[] {
  const problems: string[] = [];
  if (audit.runState !== 'success') problems.push(`run state ${audit.runState}`);
  const expected = 1 + 2 * sizes.items + 1;
  if (audit.tis.length !== expected) problems.push(`${audit.tis.length} TIs, expected ${expected}`);
  for (const t of audit.tis) {
    const name = `${t.taskId}[${t.mapIndex}] (TI ${t.id})`;
    const tries = extraTries.has(t.id) ? 2 : 1;
    if (t.state !== 'success') problems.push(`${name}: state ${t.state}`);
    if (t.tryNumber !== tries) problems.push(`${name}: try ${t.tryNumber}, expected ${tries}`);
    if (t.returnValues !== 1) problems.push(`${name}: ${t.returnValues} return values`);
    if (t.valueTry !== null && t.valueTry !== t.tryNumber) problems.push(`${name}: value written by try ${t.valueTry}, but the TI ended in try ${t.tryNumber}`);
    if (t.taskId === 'wait' && t.resumes !== 1) problems.push(`${name}: resumed ${t.resumes} times in its last try`);
  }
  if (audit.triggersLeft !== 0) problems.push(`${audit.triggersLeft} trigger rows left`);
  return problems;
}

export function lagPercentile(audit: RunAudit, p: number): number | null {
  const lags = audit.tis.flatMap((t) => (t.resumeLagMs === null ? [] : [t.resumeLagMs])).sort((a, b) => a - b);
  return lags.length ? lags[Math.min(lags.length - 1, Math.floor((p / 100) * lags.length))] : null;
}

/**
 * When UPDRAFT_FAULT_REPORT names a file (the reliability benchmark sets it), each fault suite
 * appends what it measured there as one JSON line, and times the same DAG without the fault.
 */
const REPORT = process.env.UPDRAFT_FAULT_REPORT;

export function recordFault(fault: string, figures: Record<string, unknown>): void {
  if (REPORT) appendFileSync(REPORT, `${JSON.stringify({ fault, ...figures })}\n`);
}

/** Lost: TIs that did not succeed with one return value. Twice: TIs that ran more tries than the fault allows, or resumed twice. */
export function lostAndTwice(audit: RunAudit, sizes: FaultSizes, extraTries: ReadonlySet<number> = new Set()) {
  const expected = 1 + 2 * sizes.items + 1;
  const ok = audit.tis.filter((t) => t.state === 'success' && t.returnValues === 1).length;
  const twice = audit.tis.filter((t) => t.tryNumber > (extraTries.has(t.id) ? 2 : 1) || t.resumes > 1).length;
  return { tisLost: expected - ok, tisRunTwice: twice };
}

/** Only when reporting: run the DAG once more with every process healthy, and return its duration. */
export async function baselineMs(run: (args: string[]) => Promise<{ code: number | string }>, url: string, runId: string): Promise<number | null> {
  if (!REPORT) return null;
  await run(['dags', 'trigger', 'faults', '--run-id', runId]);
  for (const deadline = Date.now() + 120_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 250))) {
    const audit = await auditRun(url, runId);
    if (audit.runState === 'success' || audit.runState === 'failed') return audit.durationMs;
  }
  return null;
}
