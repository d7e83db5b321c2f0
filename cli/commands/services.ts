/** Long-running services: standalone, scheduler, worker. Each runs until SIGINT/SIGTERM. */
import { Worker, queries, type DagBag, type Database, type Secrets, type UpdraftConfig } from '../../core/index.ts';
import { Scheduler, type SchedulerOptions } from '../../scheduler/index.ts';
import { Triggerer } from '../../triggerer/index.ts';
import { openEnv, loadBag, applyConfigPools } from '../env.ts';

export async function untilSignal(stop: () => Promise<void>): Promise<void> {
  await new Promise<void>((resolve) => {
    const onSignal = (sig: string) => {
      process.stderr.write(`updraft: ${sig} received, finishing running tasks…\n`);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  await stop();
}

function describeBag(bag: DagBag): string {
  const errors = bag.errors.size ? `, ${bag.errors.size} import error(s) (see \`updraft import-errors\`)` : '';
  return `${bag.dags.size} DAG(s) from ${bag.folder}${errors}`;
}

function schedulerOptions(database: Database, dagBag: DagBag, config: UpdraftConfig): SchedulerOptions {
  return {
    database, dagBag, zombieThresholdMs: config.zombieThresholdMs, heartbeatMs: config.heartbeatMs, maxMapLength: config.maxMapLength,
    runQueue: { maxConcurrentRuns: config.maxConcurrentRuns, runTagLimits: config.runTagConcurrencyLimits },
  };
}

export async function standalone(): Promise<void> {
  const { config, database, secrets } = await openEnv({ service: true, migrate: true });
  const bag = await loadBag(config);
  await applyConfigPools(database, config);
  process.stderr.write(`updraft standalone: ${database.where}; ${describeBag(bag)}\n`);
  for (const [file, err] of bag.errors) process.stderr.write(`  import error in ${file}: ${err}\n`);
  const scheduler = await Scheduler.create(schedulerOptions(database, bag, config));
  const worker = await Worker.create({ database, dagBag: bag, slots: config.workerSlots, heartbeatMs: config.heartbeatMs, queues: [...config.queues], maxMapLength: config.maxMapLength, secrets: secrets.secrets });
  const triggerer = await Triggerer.create({ database, heartbeatMs: config.heartbeatMs, healthThresholdMs: config.triggererHealthThresholdMs, secrets: secrets.secrets });
  const emulators = await startRequestedEmulators(secrets.secrets);
  const reporter = reportRuns(database);
  const ui = await startStandaloneUi({ config, database, secrets }, bag);
  process.stderr.write('scheduler, worker and triggerer running; Ctrl-C to stop\n');
  await untilSignal(async () => {
    clearInterval(reporter);
    await ui?.close();
    await triggerer.stop();
    await worker.stop();
    await scheduler.stop();
    for (const e of emulators) await e.close();
    await database.close();
  });
}

/** The UI, API and /health on 127.0.0.1 (healthPort, or api.port); null when the port is taken or 0. */
async function startStandaloneUi(env: Awaited<ReturnType<typeof openEnv>>, bag: DagBag): Promise<{ close(): Promise<void> } | null> {
  const port = env.config.api.port ?? env.config.healthPort;
  if (!port) return null;
  const { startUi } = await import('./api-server.ts');
  try {
    const { server, login } = await startUi(env, bag, { host: '127.0.0.1', port, generateLogin: true });
    process.stderr.write(`web UI: ${server.url}/  ${login ? `login: ${login.username} / ${login.password} (kept in ${env.config.dataDir}/standalone-admin-password.txt)` : env.config.api.auth === 'none' ? '(no login: auth none)' : '(users from the config)'}\n`);
    process.stderr.write(`health: ${server.url}/health\n`);
    return server;
  } catch (err) {
    process.stderr.write(`updraft standalone: the web UI could not listen on 127.0.0.1:${port} (${(err as Error).message}); set UPDRAFT_HEALTH_PORT to a free port\n`);
    return null;
  }
}

/**
 * BigQuery connections from the environment that ask for it (`start_emulator: true`, a loopback
 * `api_endpoint`) get Updraft's emulator there, unless something already answers on that port.
 */
async function startRequestedEmulators(secrets: Secrets): Promise<{ close(): Promise<void> }[]> {
  const started: { close(): Promise<void> }[] = [];
  const ids = Object.keys(process.env).filter((k) => k.startsWith('UPDRAFT_CONN_')).map((k) => k.slice('UPDRAFT_CONN_'.length).toLowerCase());
  for (const id of ids) {
    const conn = await secrets.connection(id).catch(() => null);
    const extra = conn?.extra as { start_emulator?: unknown; api_endpoint?: string } | undefined;
    if (!conn || !['google_cloud_platform', 'bigquery', 'gcp'].includes(conn.connType) || !(extra?.start_emulator === true || extra?.start_emulator === 'true')) continue;
    const url = new URL(extra.api_endpoint ?? 'http://127.0.0.1:9050');
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
      process.stderr.write(`connection ${id}: start_emulator needs a loopback api_endpoint, not ${url.host}; not starting one\n`);
      continue;
    }
    if (await fetch(`${url.origin}/emulator/stats`).then(() => true, () => false)) {
      process.stderr.write(`connection ${id}: something already answers at ${url.origin}; using it\n`);
      continue;
    }
    const { startEmulator } = await import('../../providers/bigquery/emulator/server.ts');
    started.push(await startEmulator({ host: url.hostname === 'localhost' ? '127.0.0.1' : url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 80) }));
    process.stderr.write(`BigQuery emulator for connection ${id}: ${url.origin} (SQL in DuckDB, in memory)\n`);
  }
  return started;
}

/** Print each run once when it finishes, so a person watching sees progress. */
function reportRuns(database: Awaited<ReturnType<typeof openEnv>>['database']): NodeJS.Timeout {
  const reported = new Set<number>();
  let first = true;
  return setInterval(async () => {
    try {
      const runs = await queries.dagRuns.listRuns(database.db, undefined, 200);
      for (const r of runs.reverse()) {
        if ((r.state === 'success' || r.state === 'failed') && !reported.has(r.id)) {
          reported.add(r.id);
          if (!first || Date.now() - (r.endDate?.getTime() ?? 0) < 10_000) {
            process.stderr.write(`run ${r.dagId} ${r.runId}: ${r.state}\n`);
          }
        }
      }
      first = false;
    } catch { /* the database may be busy or restarting; try again next tick */ }
  }, 1000);
}

export async function scheduler(metricsPort?: number): Promise<void> {
  const { config, database } = await openEnv({ service: true, migrate: true });
  const bag = await loadBag(config);
  await applyConfigPools(database, config);
  const s = await Scheduler.create({ ...schedulerOptions(database, bag, config), metricsPort });
  process.stderr.write(`updraft scheduler ${s.id}: ${metricsPort !== undefined ? `metrics on :${metricsPort}/metrics; ` : ''}${database.where}; ${describeBag(bag)}\n`);
  await untilSignal(async () => {
    await s.stop();
    await database.close();
  });
}

export async function worker(slots: number | undefined, graceMs: number, prefetch?: number, metricsPort?: number): Promise<void> {
  const { config, database, secrets } = await openEnv({ service: true, migrate: true });
  const bag = await loadBag(config);
  const w = await Worker.create({
    database, dagBag: bag, slots: slots ?? config.workerSlots, heartbeatMs: config.heartbeatMs, queues: [...config.queues], maxMapLength: config.maxMapLength, secrets: secrets.secrets, prefetch, metricsPort,
  });
  process.stderr.write(`updraft worker ${w.id}: ${w.slots} slots, queues ${config.queues.join(',')}${metricsPort !== undefined ? `, metrics on :${metricsPort}/metrics` : ''}; ${database.where}; ${describeBag(bag)}\n`);
  await untilSignal(async () => {
    await w.stop(graceMs);
    await database.close();
    process.stderr.write(`updraft worker ${w.id} stopped: ${w.usage.started} TIs started, at most ${w.usage.peakExecuting} of ${w.slots} slots in use at once\n`);
  });
}

/** `updraft bigquery-emulator`: the local BigQuery-compatible server, until SIGINT or SIGTERM. */
export async function bigqueryEmulator(opts: { port: number; project?: string; dataDir?: string; jobDurationMs?: number }): Promise<void> {
  const { startEmulator } = await import('../../providers/bigquery/emulator/server.ts');
  const emulator = await startEmulator({ ...opts, log: (line) => process.stderr.write(`${line}\n`) });
  process.stderr.write(`updraft bigquery-emulator: ${emulator.url} (SQL runs in DuckDB${opts.dataDir ? `, kept in ${opts.dataDir}` : ', in memory'}); `
    + `connect with {"conn_type":"google_cloud_platform","extra":{"project":"${opts.project ?? 'dev'}","api_endpoint":"${emulator.url}"}} (any project id works)\n`);
  await untilSignal(() => emulator.close());
}
