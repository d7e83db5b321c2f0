/**
 * `db clean`: delete what finished runs left before a date, batch by batch (see
 * core/db/queries/cleanup.ts). It refuses to delete without --yes: there is no prompt to answer.
 */
import { queries } from '../../core/index.ts';
import { openEnv, printJson, table, out } from '../env.ts';
import { UsageError } from '../errors.ts';

const TABLES = queries.cleanup.CLEANABLE_TABLES;
type Table = (typeof TABLES)[number];

export async function dbClean(beforeRaw: string | undefined, tableArgs: string[], dryRun: boolean, yes: boolean, json: boolean): Promise<void> {
  if (beforeRaw === undefined) throw new UsageError('missing --before; give a date such as 2024-01-01: finished runs that ended before it are cleaned');
  const before = new Date(beforeRaw);
  if (Number.isNaN(before.getTime())) throw new UsageError(`--before is not a date: "${beforeRaw}"; use a date such as 2024-01-01 or 2024-01-01T06:00:00Z`);
  const tables = tableArgs.flatMap((t) => t.split(',')).map((t) => t.trim()).filter(Boolean);
  for (const t of tables) if (!(TABLES as readonly string[]).includes(t)) throw new UsageError(`--table "${t}" is not cleanable; use one of ${TABLES.join(', ')}`);
  const chosen = (tables.length ? tables : [...TABLES]) as Table[];
  if (!dryRun && !yes) {
    throw new UsageError(`db clean deletes rows from ${chosen.join(', ')} older than ${before.toISOString()} and cannot be undone; `
      + 'look first with --dry-run, then run again with --yes');
  }
  const { database } = await openEnv();
  try {
    if (dryRun) {
      const counts = await queries.cleanup.countCleanable(database.db, before, chosen);
      if (json) printJson({ before, dryRun: true, rows: counts });
      else out(`${table(Object.entries(counts).map(([t, rows]) => ({ table: t, rows })), ['table', 'rows'])}\n(dry run: nothing deleted)\n`);
      return;
    }
    const started = Date.now();
    let lastReport = started;
    const deleted = await queries.cleanup.cleanBefore(database.db, {
      before, tables: chosen,
      onBatch: (t, n) => {
        if (json || Date.now() - lastReport < 1000) return;
        lastReport = Date.now();
        process.stderr.write(`  ${t}: ${n} row(s) in the last batch\n`);
      },
    });
    const seconds = (Date.now() - started) / 1000;
    const rows = chosen.map((t) => ({ table: t, deleted: deleted[t] }));
    if (json) printJson({ before, deleted, seconds });
    else out(`${table(rows, ['table', 'deleted'])}\ncleaned in ${seconds.toFixed(1)}s\n`);
  } finally {
    await database.close();
  }
}
