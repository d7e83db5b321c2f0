/** `triggerer`, `triggers list`, `triggers rotate-key`, and the task state changes that cancel triggers. */
import { eq } from 'drizzle-orm';
import { KwargsCodec, schema, changeTaskInstance, TiAction, queries, oneLine } from '../../core/index.ts';
import { Triggerer } from '../../triggerer/index.ts';
import { openEnv, loadBag, printJson, table, out } from '../env.ts';
import { untilSignal } from './services.ts';

export async function triggerer(capacity: number | undefined, metricsPort: number | undefined): Promise<void> {
  const { config, database, secrets } = await openEnv({ service: true, migrate: true });
  // DAG files register their custom trigger classes when imported.
  const bag = await loadBag(config);
  const t = await Triggerer.create({
    database, capacity, metricsPort, heartbeatMs: config.heartbeatMs, healthThresholdMs: config.triggererHealthThresholdMs, secrets: secrets.secrets,
  });
  process.stderr.write(`updraft triggerer ${t.id}: capacity ${capacity ?? 100_000}${metricsPort !== undefined ? `, metrics on :${metricsPort}/metrics` : ''}; ${database.where}; ${bag.dags.size} DAG(s) loaded\n`);
  await untilSignal(async () => {
    await t.stop();
    await database.close();
  });
}

export async function triggersList(json: boolean): Promise<void> {
  const { database } = await openEnv();
  try {
    const now = Date.now();
    const rows = (await queries.triggers.listTriggers(database.db)).map((r) => ({
      id: r.id, name: r.name, triggerer: r.triggererId ?? '(unclaimed)', ageS: Math.round((now - r.createdDate.getTime()) / 1000), tis: r.waiting,
    }));
    if (json) printJson(rows);
    else out(rows.length ? `${table(rows, ['id', 'name', 'triggerer', 'ageS', 'tis'])}\n` : 'no triggers\n');
  } finally {
    await database.close();
  }
}

/** Re-seal every trigger's kwargs with UPDRAFT_SECRET_KEY (old keys from UPDRAFT_SECRET_KEY_PREVIOUS). */
/** Re-seal every secret at rest with the current key: trigger kwargs, connections, variables. */
export async function rotateKey(json: boolean): Promise<void> {
  const codec = KwargsCodec.fromEnv();
  const { database, secrets } = await openEnv({ migrate: true });
  let rewritten = 0;
  try {
    const rows = await database.db.select({ id: schema.triggers.id, kwargs: schema.triggers.kwargs }).from(schema.triggers);
    for (const row of rows) {
      if (codec.isCurrent(row.kwargs)) continue;
      let plain;
      try {
        plain = codec.open(row.kwargs);
      } catch (err) {
        throw new Error(`trigger #${row.id}: ${oneLine(err)}`);
      }
      await database.db.update(schema.triggers).set({ kwargs: codec.seal(plain) }).where(eq(schema.triggers.id, row.id));
      rewritten++;
    }
    const resealed = await secrets.store.reseal();
    if (json) printJson({ triggers: rewritten, triggersTotal: rows.length, ...resealed });
    else {
      out(`re-sealed ${rewritten} of ${rows.length} trigger(s) ${codec.encrypting ? 'with the current UPDRAFT_SECRET_KEY' : 'as plain JSON (no UPDRAFT_SECRET_KEY set)'}\n`);
      out(`re-sealed ${resealed.connections} connection(s) and ${resealed.variables} variable(s) with the current key\n`);
    }
  } finally {
    await database.close();
  }
}

export async function changeTask(action: TiAction, dagId: string, runId: string, taskId: string): Promise<void> {
  const { database } = await openEnv();
  try {
    const r = await changeTaskInstance(database, { dagId, runId, taskId }, action);
    const verb = action === TiAction.CLEAR ? 'cleared' : `marked ${action}`;
    out(`${verb} ${r.tiIds.length} task instance(s)${r.killedTriggers.length ? `; killed trigger(s) ${r.killedTriggers.join(', ')}` : ''}\n`);
  } finally {
    await database.close();
  }
}
