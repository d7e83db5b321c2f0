/**
 * `sftp.SftpTrigger`: waits in the triggerer until a path exists, or until files in a
 * directory match a pattern (and are newer than a moment). Each poll goes through the
 * triggerer's shared pool, so a thousand such waits on one server use a few SSH connections,
 * not a handshake per poll; identical waits are deduplicated by the triggerer. The event lists
 * the matched files as plain JSON.
 */
import { z } from 'zod';
import { BaseTrigger, TriggerEvent, registerTrigger } from 'updraft';
import { SftpHook, type SftpFile } from './hook.ts';
import { isConnectionLevel, SFTP_STATUS } from './pool.ts';

const sftpTriggerSchema = z.object({
  connId: z.string().min(1),
  path: z.string().min(1),
  /** A glob on the names below `path`; without it, `path` itself must exist. */
  pattern: z.string().min(1).optional(),
  /** ISO 8601: only files modified after it count. */
  newerThan: z.string().datetime({ offset: true }).optional(),
  pokeIntervalMs: z.number().int().min(100).default(5_000),
  /** Wait this long before the first poll (a re-deferral after a failed check). */
  firstPokeDelayMs: z.number().int().min(0).default(0),
}).strict();

export type SftpTriggerKwargs = z.output<typeof sftpTriggerSchema>;
export type SftpTriggerInput = z.input<typeof sftpTriggerSchema>;

export interface SftpEvent {
  files: SftpFile[];
  pokes: number;
}

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(t); reject(signal.reason); };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** One poll: the matching files, or none yet. Shared by the trigger and the sensor's worker-side pokes. */
export async function pollSftp(hook: SftpHook, k: Pick<SftpTriggerKwargs, 'path' | 'pattern' | 'newerThan'>, signal?: AbortSignal): Promise<SftpFile[]> {
  if (k.pattern) {
    try {
      return await hook.list(k.path, { pattern: k.pattern, newerThan: k.newerThan, signal });
    } catch (err) {
      if ((err as { code?: unknown }).code === SFTP_STATUS.NO_SUCH_FILE) return [];
      throw err;
    }
  }
  try {
    const file = await hook.stat(k.path, { signal });
    if (k.newerThan && Date.parse(file.mtime) <= Date.parse(k.newerThan)) return [];
    return [file];
  } catch (err) {
    if ((err as { code?: unknown }).code === SFTP_STATUS.NO_SUCH_FILE) return [];
    throw err;
  }
}

export class SftpTrigger extends BaseTrigger<SftpTriggerKwargs> {
  static readonly triggerName = 'sftp.SftpTrigger';
  static readonly kwargsSchema: z.ZodType<SftpTriggerKwargs> = sftpTriggerSchema as z.ZodType<SftpTriggerKwargs>;

  constructor(kwargs: SftpTriggerInput) {
    // Stored as JSON: leave out what was not given.
    super(JSON.parse(JSON.stringify(sftpTriggerSchema.parse(kwargs))) as SftpTriggerKwargs);
  }

  async *run(): AsyncGenerator<TriggerEvent<SftpEvent>, void, void> {
    const k = this.kwargs;
    const signal = this.runtime.signal;
    const hook = await SftpHook.create({ connection: (id) => this.runtime.connection(id), log: this.runtime.log, signal }, k.connId);
    const what = k.pattern ? `${k.path}/${k.pattern}` : k.path;
    if (k.firstPokeDelayMs) await sleep(k.firstPokeDelayMs, signal);
    for (let pokes = 1; ; pokes++) {
      let files: SftpFile[] = [];
      try {
        files = await pollSftp(hook, k, signal);
      } catch (err) {
        // The server may come back: a connection failure is one more poll, anything else ends the wait.
        if (!isConnectionLevel(err) || signal.aborted) throw err;
        this.runtime.log.warn('sftp %s: poll %d failed (%s); next poll in %d ms', what, pokes, (err as Error).message, k.pokeIntervalMs);
      }
      if (files.length) {
        yield new TriggerEvent<SftpEvent>({ files, pokes });
        return;
      }
      await sleep(k.pokeIntervalMs, signal);
    }
  }
}

registerTrigger(SftpTrigger);
