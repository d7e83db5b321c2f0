/**
 * Per-try log capture. Each running TI gets a buffer; `context.log` writes to it, and so does
 * `console.*` called from inside the task (attributed through AsyncLocalStorage, so async
 * tasks sharing one loop never mix their lines). Buffers are flushed with the TI's result.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { format } from 'node:util';
import type { TaskLogger } from '../authoring/context.ts';
import { masker } from '../secrets/masker.ts';
import { taskLogSettings } from './log-store.ts';

export interface LogLine {
  ts: Date;
  level: 'info' | 'warn' | 'error' | 'debug';
  message: string;
}

/** A runaway task must not exhaust memory through its logs. */
const MAX_LINES = 10_000;

export class LogBuffer {
  readonly lines: LogLine[] = [];
  private dropped = 0;
  private bytes = 0;
  private truncatedBytes = 0;

  constructor(private readonly maxBytes = taskLogSettings().maxBytesPerTry) {}

  write(level: LogLine['level'], message: string, args: unknown[] = []): void {
    if (this.lines.length >= MAX_LINES) {
      this.dropped++;
      return;
    }
    // Masked as it is written: a secret never sits in a buffer a later bug could print.
    const text = masker.mask(args.length ? format(message, ...args) : message);
    const size = Buffer.byteLength(text);
    if (this.truncatedBytes || this.bytes + size > this.maxBytes) {
      // The head of the log is kept whole; everything past the cap is counted, not kept.
      const room = this.truncatedBytes ? 0 : this.maxBytes - this.bytes;
      if (room > 0) this.lines.push({ ts: new Date(), level, message: Buffer.from(text).subarray(0, room).toString() });
      this.bytes += Math.max(0, room);
      this.truncatedBytes += size - Math.max(0, room);
      return;
    }
    this.bytes += size;
    this.lines.push({ ts: new Date(), level, message: text });
  }

  logger(): TaskLogger {
    return {
      info: (m, ...a) => this.write('info', m, a),
      warn: (m, ...a) => this.write('warn', m, a),
      error: (m, ...a) => this.write('error', m, a),
      debug: (m, ...a) => this.write('debug', m, a),
    };
  }

  drain(): LogLine[] {
    if (this.truncatedBytes) {
      this.lines.push({ ts: new Date(), level: 'warn', message: `… truncated ${this.truncatedBytes} bytes … (the log of a try is capped at ${this.maxBytes} bytes: UPDRAFT_LOG_MAX_BYTES_PER_TRY)` });
    }
    if (this.dropped) this.lines.push({ ts: new Date(), level: 'warn', message: `${this.dropped} further log line(s) dropped (limit ${MAX_LINES} per try)` });
    this.dropped = 0;
    this.truncatedBytes = 0;
    return this.lines.splice(0);
  }
}

export const taskLogScope = new AsyncLocalStorage<LogBuffer>();

let installed = false;

/** Route console output made inside a task to that task's log; elsewhere it prints as usual. */
export function installConsoleCapture(): void {
  if (installed) return;
  installed = true;
  const levels = { log: 'info', info: 'info', warn: 'warn', error: 'error', debug: 'debug' } as const;
  for (const [method, level] of Object.entries(levels)) {
    const original = (console as unknown as Record<string, (...a: unknown[]) => void>)[method].bind(console);
    (console as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
      const buf = taskLogScope.getStore();
      if (buf) buf.write(level, format(...args));
      else original(...args);
    };
  }
}
