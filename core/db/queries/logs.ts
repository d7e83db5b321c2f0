/** Task logs, one row per line, per try. */
import { and, asc, eq, type SQL } from 'drizzle-orm';
import { logs } from '../schema.ts';
import type { Executor } from '../client.ts';
import { storableText } from '../../model/json-value.ts';

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

export async function readLogs(ex: Executor, tiId: number, tryNumber?: number) {
  return ex.select({ tryNumber: logs.tryNumber, ts: logs.ts, level: logs.level, message: logs.message }).from(logs)
    .where(tryNumber === undefined ? eq(logs.tiId, tiId) : and(eq(logs.tiId, tiId), eq(logs.tryNumber, tryNumber)))
    .orderBy(asc(logs.tryNumber), asc(logs.id));
}
