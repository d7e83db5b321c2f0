/**
 * The DAG bag: imports every DAG file in a folder (TypeScript directly, no build step) and
 * keeps the DAGs they export. A file that fails to import is recorded with a one-line reason
 * and every other file keeps working. Re-importing a changed file uses a fresh module URL.
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Dag } from '../authoring/dag.ts';
import { UnknownDagError } from '../errors.ts';
import { dagBagImportErrors, dagBagRefreshSeconds, dagFileParseSeconds } from '../metrics/process-metrics.ts';

const DAG_FILE = /\.(ts|mts|js|mjs)$/;
const DUPLICATE_MARK = 'is already defined in';

export interface DagBagSnapshot {
  dags: Map<string, Dag>;
  /** fileloc → one-line error */
  errors: Map<string, string>;
}

export class DagBag {
  readonly dags = new Map<string, Dag>();
  readonly errors = new Map<string, string>();
  private readonly mtimes = new Map<string, number>();
  private readonly fileDags = new Map<string, string[]>();

  constructor(readonly folder: string) {}

  static async load(folder: string): Promise<DagBag> {
    const bag = new DagBag(path.resolve(folder));
    await bag.refresh();
    return bag;
  }

  /** Re-import new and changed files, drop removed ones. Returns whether anything changed. */
  async refresh(): Promise<boolean> {
    const began = performance.now();
    const files = listDagFiles(this.folder);
    let changed = false;
    for (const file of [...this.mtimes.keys()]) {
      if (!files.has(file)) {
        this.forget(file);
        this.errors.delete(file);
        changed = true;
      }
    }
    for (const [file, mtime] of files) {
      if (this.mtimes.get(file) === mtime) continue;
      this.mtimes.set(file, mtime);
      await this.importFile(file, versionOf(mtime));
      changed = true;
    }
    // A file that failed only because another file held its DAG id may load now.
    if (changed) {
      for (const file of [...this.errors.keys()]) {
        if (this.errors.get(file)?.includes(DUPLICATE_MARK)) await this.importFile(file, versionOf(this.mtimes.get(file)!));
      }
      dagBagRefreshSeconds.set((performance.now() - began) / 1000);
      dagBagImportErrors.set(this.errors.size);
    }
    return changed;
  }

  get(dagId: string): Dag {
    const d = this.dags.get(dagId);
    if (!d) throw new UnknownDagError(dagId, [...this.dags.keys()].sort());
    return d;
  }

  private forget(file: string) {
    for (const id of this.fileDags.get(file) ?? []) this.dags.delete(id);
    this.fileDags.delete(file);
    this.mtimes.delete(file);
  }

  private async importFile(file: string, version: string) {
    for (const id of this.fileDags.get(file) ?? []) this.dags.delete(id);
    this.fileDags.set(file, []);
    const began = performance.now();
    try {
      const found = await importDagFile(file, version);
      for (const d of found) {
        const other = this.dags.get(d.dagId);
        if (other && other.fileloc !== file) {
          throw new Error(`DAG id "${d.dagId}" ${DUPLICATE_MARK} ${path.relative(this.folder, other.fileloc)}; DAG ids must be unique`);
        }
      }
      for (const d of found) this.dags.set(d.dagId, d);
      this.fileDags.set(file, found.map((d) => d.dagId));
      this.errors.delete(file);
    } catch (err) {
      this.errors.set(file, oneLine(err, file));
    }
    dagFileParseSeconds.observe((performance.now() - began) / 1000);
  }
}

/** Import one DAG file and return the DAGs it exports, with `fileloc` set. */
export async function importDagFile(file: string, version: string = versionOf(statSync(file).mtimeMs)): Promise<Dag[]> {
  const mod = (await import(`${pathToFileURL(file).href}?v=${version}`)) as Record<string, unknown>;
  const found = Object.values(mod).filter((v): v is Dag => v instanceof Dag);
  for (const d of found) {
    d.fileloc = file;
    d.fileVersion = String(version);
  }
  return [...new Set(found)];
}

/** An integer version: some loaders read a dotted query as a file extension. */
function versionOf(mtimeMs: number): string {
  return String(Math.round(mtimeMs * 1000));
}

function listDagFiles(folder: string): Map<string, number> {
  const out = new Map<string, number>();
  let entries: string[];
  try {
    entries = readdirSync(folder, { recursive: true }) as string[];
  } catch {
    return out;
  }
  for (const rel of entries) {
    if (!DAG_FILE.test(rel) || rel.endsWith('.d.ts') || rel.split(path.sep).some((p) => p.startsWith('.') || p === 'node_modules')) continue;
    const file = path.join(folder, rel);
    try {
      const st = statSync(file);
      if (st.isFile()) out.set(file, st.mtimeMs);
    } catch { /* removed while listing */ }
  }
  return out;
}

/** The first line of an error, plus where it came from when a stack points into a DAG file. */
export function oneLine(err: unknown, file?: string): string {
  if (!(err instanceof Error)) return String(err);
  const where = file ? locate(err, file) : '';
  // eslint-disable-next-line no-control-regex
  const lines = err.message.replace(/\x1b\[[0-9;]*m/g, '').split('\n').map((l) => l.trim()).filter(Boolean);
  // Compilers often say "Transform failed with 1 error:" first and the real reason next.
  const text = lines[0]?.endsWith(':') && lines[1] ? `${lines[0]} ${lines[1]}` : (lines[0] ?? '');
  return `${err.name === 'Error' ? '' : `${err.name}: `}${text}${where}`;
}

/** " (file.ts:4:45)" from the first stack frame inside `file`, if there is one. */
function locate(err: Error, file: string): string {
  const base = path.basename(file);
  for (const line of (err.stack ?? '').split('\n').slice(1)) {
    const m = line.match(/([^\s(]+?)(?:\?v=\d+)?:(\d+):(\d+)\)?\s*$/);
    if (m && (m[1].endsWith(file) || m[1].endsWith(`/${base}`))) return ` (${base}:${m[2]}:${m[3]})`;
  }
  return '';
}
