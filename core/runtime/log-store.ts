/**
 * Where task logs go, and how much of them. Lines go to the `logs` table by default; with a
 * log folder they go to one file per try instead, laid out as Airflow does
 * (`dag_id=…/run_id=…/task_id=…[/map_index=…]/attempt=N.log`, one JSON object per line).
 * Lines the triggerer or the scheduler writes (deferral, zombies) stay in the table, so a
 * reader merges both. Settings come from the config, once per process.
 */
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Executor } from '../db/client.ts';
import { readLogs, type LogWrite } from '../db/queries/logs.ts';

export interface TaskLogSettings {
  /** Bytes of log text kept per try; past it, one "… truncated N bytes …" line. */
  readonly maxBytesPerTry: number;
  /** Write task logs to files under this folder instead of the database. */
  readonly folder: string | null;
}

export const DEFAULT_LOG_MAX_BYTES_PER_TRY = 4 * 1024 * 1024;

let settings: TaskLogSettings = { maxBytesPerTry: DEFAULT_LOG_MAX_BYTES_PER_TRY, folder: null };

export function configureTaskLogs(s: TaskLogSettings): void {
  settings = Object.freeze({ ...s });
}

export function taskLogSettings(): TaskLogSettings {
  return settings;
}

export interface TiRef {
  id: number;
  dagId: string;
  runId: string;
  taskId: string;
  mapIndex: number;
}

const part = (key: string, value: string) => `${key}=${encodeURIComponent(value)}`;

export function logFilePath(folder: string, ti: TiRef, tryNumber: number): string {
  const dirs = [part('dag_id', ti.dagId), part('run_id', ti.runId), part('task_id', ti.taskId)];
  if (ti.mapIndex >= 0) dirs.push(`map_index=${ti.mapIndex}`);
  return path.join(folder, ...dirs, `attempt=${tryNumber}.log`);
}

/** Append the lines to their tries' files. */
export async function appendLogFiles(folder: string, lines: LogWrite[], tis: Iterable<TiRef>): Promise<void> {
  const byId = new Map([...tis].map((t) => [t.id, t]));
  const files = new Map<string, string[]>();
  for (const l of lines) {
    const ti = byId.get(l.tiId);
    if (!ti) continue;
    const file = logFilePath(folder, ti, l.tryNumber);
    const text = files.get(file) ?? [];
    text.push(`${JSON.stringify({ ts: l.ts.toISOString(), level: l.level, message: l.message })}\n`);
    files.set(file, text);
  }
  for (const [file, text] of files) {
    await mkdir(path.dirname(file), { recursive: true });
    await appendFile(file, text.join(''));
  }
}

export interface StoredLogLine {
  tryNumber: number;
  ts: Date;
  level: string;
  message: string;
  source: string;
}

/** A TI's log lines from the table and, when a folder is set, its files, in time order. */
export async function readTaskLogs(ex: Executor, ti: TiRef, tryNumber: number | undefined, maxTry: number, folder = settings.folder): Promise<StoredLogLine[]> {
  const lines: StoredLogLine[] = await readLogs(ex, ti.id, tryNumber);
  if (folder) {
    for (let t = tryNumber ?? 1; t <= (tryNumber ?? maxTry); t++) {
      const text = await readFile(logFilePath(folder, ti, t), 'utf8').catch(() => '');
      for (const raw of text.split('\n')) {
        if (!raw) continue;
        const l = JSON.parse(raw) as { ts: string; level: string; message: string };
        lines.push({ tryNumber: t, ts: new Date(l.ts), level: l.level, message: l.message, source: 'task' });
      }
    }
  }
  return lines.sort((a, b) => a.tryNumber - b.tryNumber || a.ts.getTime() - b.ts.getTime());
}
