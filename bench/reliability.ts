/**
 * Reliability figures: runs the fault suites (real processes on PostgreSQL: a database
 * restart, a partitioned triggerer and worker, SIGKILL and SIGTERM of each service) with
 * UPDRAFT_FAULT_REPORT set, so each suite appends what it measured (takeover times, TIs lost
 * and run twice, the run's duration with the fault and without it), and prints them together.
 * A suite that fails records nothing for its fault, and the bench fails.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SUITES = [
  'tests/integration/deferral-ha.test.ts',
  'tests/integration/faults-db-restart.test.ts',
  'tests/integration/faults-partition.test.ts',
  'tests/integration/faults-handover.test.ts',
];

export async function reliabilityBench(json: boolean): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'updraft-faults-'));
  const report = path.join(dir, 'faults.jsonl');
  try {
    // One suite at a time, so the faults do not share the machine with each other.
    const result = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run', '--maxWorkers=1', ...SUITES], {
      cwd: ROOT, env: { ...process.env, UPDRAFT_FAULT_REPORT: report }, stdio: json ? ['ignore', 'ignore', 'inherit'] : 'inherit',
    });
    if (result.status !== 0) throw new Error(`a fault suite failed (exit ${result.status}); its fault is not reported`);
    const faults: Record<string, unknown> = {};
    if (existsSync(report)) {
      for (const line of readFileSync(report, 'utf8').split('\n').filter(Boolean)) {
        const { fault, ...figures } = JSON.parse(line) as { fault: string };
        faults[fault] = figures;
      }
    }
    return { bench: 'reliability', faults };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
