/** Task logs, one row per line, per try. */
import { and, asc, eq, sql, type SQL } from 'drizzle-orm';
import { logs } from '../schema.ts';
import type { Executor } from '../client.ts';
import { storableText } from '../../model/json-value.ts';
import { TaskState } from '../../model/states.ts';

export interface LogWrite {
  tiId: number;
  tryNumber: number;
  ts: Date;
  level: string;
  message: string;
}

export async function writeLogs(ex: Executor, lines: LogWrite[]): Promise<void> {
  for (const statement of writeLogsStatements(ex, lines)) await ex.execute(statement);
}

/** writeLogs as statements (2,000 lines each). */
export function writeLogsStatements(ex: Executor, lines: LogWrite[]): SQL[] {
  const out: SQL[] = [];
  for (let i = 0; i < lines.length; i += 2000) {
    out.push(ex.insert(logs).values(lines.slice(i, i + 2000).map((l) => ({ ...l, message: storableText(l.message) }))).getSQL());
  }
  return out;
}

export interface TriggerLogWrite {
  triggerId: number;
  ts: Date;
  level: string;
  message: string;
}

/**
 * A trigger's lines, copied to the current try's log of every TI deferred on it. Written
 * before the trigger's outcome is applied, while the TIs still point at the trigger.
 */
export function writeTriggerLogsStatement(lines: TriggerLogWrite[]): SQL | null {
  if (!lines.length) return null;
  const values = sql.join(lines.map((l) => sql`(${l.triggerId}::bigint, ${l.ts.toISOString()}::timestamptz, ${l.level}::text, ${storableText(l.message)}::text)`), sql`, `);
  return sql`insert into logs (ti_id, try_number, ts, level, message, source)
    select ti.id, ti.try_number, v.ts, v.level, v.message, 'triggerer'
    from (values ${values}) as v(trigger_id, ts, level, message)
    join task_instances ti on ti.trigger_id = v.trigger_id and ti.state = ${TaskState.DEFERRED}`;
}

/** A TI's log lines in time order: the worker's and the triggerer's, interleaved. */
export async function readLogs(ex: Executor, tiId: number, tryNumber?: number) {
  return ex.select({ tryNumber: logs.tryNumber, ts: logs.ts, level: logs.level, message: logs.message, source: logs.source }).from(logs)
    .where(tryNumber === undefined ? eq(logs.tiId, tiId) : and(eq(logs.tiId, tiId), eq(logs.tryNumber, tryNumber)))
    .orderBy(asc(logs.tryNumber), asc(logs.ts), asc(logs.id));
}
