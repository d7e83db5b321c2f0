/**
 * Real `updraft` OS processes for integration suites: start them, wait for what they print,
 * and always stop them (gracefully first, SIGKILL if they linger), failed test or not.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { databaseReport } from './diagnose.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/updraft.js', import.meta.url));

export interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** Resolves with the exit code (or the signal name) once the process has ended. */
  readonly exited: Promise<number | string>;
}

export class Procs {
  private readonly all: Proc[] = [];

  constructor(private readonly env: Record<string, string>) {}

  start(name: string, args: string[], env: Record<string, string> = {}): Proc {
    const fullEnv: NodeJS.ProcessEnv = { ...process.env, ...this.env, ...env };
    delete fullEnv.NODE_OPTIONS;
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
    const exited = new Promise<number | string>((resolve) => {
      child.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
      child.on('error', (err) => resolve(`spawn error: ${err.message}`));
    });
    const proc: Proc = { name, child, output: () => out, exited };
    this.all.push(proc);
    return proc;
  }

  /** Run a one-shot command to completion. */
  async run(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<{ code: number | string; output: string }> {
    const p = this.start(`updraft ${args.join(' ')}`, args, env);
    const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
    const code = await p.exited;
    clearTimeout(timer);
    return { code, output: p.output() };
  }

  /** Resolve with the first match of `pattern` in the output; reject if the process ends first. */
  async waitForOutput(p: Proc, pattern: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    let ended = false;
    void p.exited.then(() => { ended = true; });
    for (;;) {
      const m = p.output().match(pattern);
      if (m) return m;
      if (ended) throw new Error(`${p.name} exited (${await p.exited}) before printing ${pattern}:\n${p.output()}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${p.name} to print ${pattern}:\n${p.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  alive(p: Proc): boolean {
    return p.child.exitCode === null && p.child.signalCode === null;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  async stop(p: Proc, graceMs = 15_000): Promise<void> {
    if (!this.alive(p)) return;
    p.child.kill('SIGTERM');
    const timer = setTimeout(() => { if (this.alive(p)) p.child.kill('SIGKILL'); }, graceMs);
    await p.exited;
    clearTimeout(timer);
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.all.map((p) => this.stop(p)));
    this.all.length = 0;
  }

  /**
   * For a failing test: every process's output, then the database's state (TIs, trigger
   * owners, heartbeats) when the processes share a DATABASE_URL.
   */
  async report(): Promise<string> {
    const url = this.env.DATABASE_URL;
    return `process output:\n${this.dump()}\n${url ? `database state:\n${await databaseReport(url)}\n` : ''}`;
  }

  /** Every process's output. */
  dump(): string {
    return this.all.map((p) => `----- ${p.name} (pid ${p.child.pid})\n${p.output()}`).join('\n');
  }
}
