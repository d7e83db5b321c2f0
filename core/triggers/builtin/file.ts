/**
 * FileTrigger: waits until a path, or at least `minCount` files matching a glob, exist. It
 * checks at once, then once per poke interval on one abortable timer. A plain path (no glob
 * characters) is a single `stat`; a glob is matched with tinyglobby, files only. The event
 * lists the matches sorted, so two triggerers watching the same files yield the same payload.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { glob, isDynamicPattern } from 'tinyglobby';
import { z } from 'zod';
import { BaseTrigger } from '../base-trigger.ts';
import { TriggerEvent } from '../events.ts';
import { registerTrigger } from '../registry.ts';
import { MIN_POKE_INTERVAL_MS, sleep } from './date-time.ts';

export const FILE_POKE_INTERVAL_MS = 5_000;

export type FileTriggerKwargs = {
  /** Absolute path, or absolute glob such as "/data/in/*.csv". */
  pattern: string;
  pokeIntervalMs: number;
  minCount: number;
};

export type FileTriggerInput = Pick<FileTriggerKwargs, 'pattern'> & Partial<Omit<FileTriggerKwargs, 'pattern'>>;

const fileKwargsSchema = z.object({
  // Relative patterns would resolve against whichever directory the triggerer started in.
  pattern: z.string().min(1).refine((p) => path.isAbsolute(p), 'must be an absolute path or glob (relative ones depend on the triggerer\'s working directory)'),
  pokeIntervalMs: z.number().int().min(MIN_POKE_INTERVAL_MS).default(FILE_POKE_INTERVAL_MS),
  minCount: z.number().int().min(1).default(1),
}).strict();

/** Yields `{ paths }` (sorted absolute paths) once at least `minCount` files match. */
export class FileTrigger extends BaseTrigger<FileTriggerKwargs> {
  static readonly triggerName = 'updraft.FileTrigger';
  static readonly kwargsSchema: z.ZodType<FileTriggerKwargs> = fileKwargsSchema;

  constructor(kwargs: FileTriggerInput) {
    super({
      pattern: kwargs.pattern,
      pokeIntervalMs: kwargs.pokeIntervalMs ?? FILE_POKE_INTERVAL_MS,
      minCount: kwargs.minCount ?? 1,
    });
  }

  async *run(): AsyncGenerator<TriggerEvent, void, void> {
    const { signal } = this.runtime;
    while (!signal.aborted) {
      const paths = await this.check(signal);
      if (signal.aborted) return;
      if (paths.length >= this.kwargs.minCount) {
        yield new TriggerEvent({ paths });
        return;
      }
      if (!(await sleep(this.kwargs.pokeIntervalMs, signal))) return;
    }
  }

  /** One poke: the files matching now. */
  check(signal?: AbortSignal): Promise<string[]> {
    return matchFiles(this.kwargs.pattern, signal);
  }
}

/** Files matching `pattern`, sorted; a missing path or directory is simply no match. */
export async function matchFiles(pattern: string, signal?: AbortSignal): Promise<string[]> {
  if (!isDynamicPattern(pattern)) {
    try {
      return (await stat(pattern)).isFile() ? [path.resolve(pattern)] : [];
    } catch (err) {
      if (isMissing(err)) return [];
      throw err;
    }
  }
  const found = await glob(pattern, { absolute: true, onlyFiles: true, expandDirectories: false, signal });
  return found.sort();
}

function isMissing(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

registerTrigger(FileTrigger);
