/**
 * Limit keys across real processes on PostgreSQL (a scheduler and two workers with slots to
 * spare, so only the limits hold TIs back): the three forms of tag limit within a run,
 * maxActiveTisPerDagrun, maxActiveTisPerDag and maxActiveTasksPerRun. Every task reports
 * the interval it ran in; the largest overlap must reach the limit and never pass it.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { triggerDagRun, DagBag, RunState } from '../../core/index.ts';
import { pgAvailable } from '../helpers/pg.ts';
import { Cluster, fixture, maxOverlap, type Interval } from './cluster.ts';

const DAGS = fixture('conc-limits');
const ENV = { UPDRAFT_CONFIG: fixture('conc-config/open.json'), UPDRAFT_DAGS_FOLDER: DAGS };

describe.skipIf(!pgAvailable)('limit keys across worker processes on PostgreSQL', () => {
  let cluster: Cluster;
  let bag: DagBag;

  beforeAll(async () => {
    cluster = await Cluster.create('updraft_conc_limits');
    bag = await DagBag.load(DAGS);
    expect([...bag.errors]).toEqual([]);
  });
  afterAll(async () => {
    await cluster?.close();
  });
  beforeEach(async ({ onTestFailed }) => {
    const procs = cluster.reset(ENV);
    onTestFailed(async () => { process.stderr.write(await procs.report()); });
    await cluster.services(2, 16);
  });
  afterEach(async () => {
    await cluster.procs.stopAll();
  });

  /** Trigger `n` runs at once (through the API, so they start together) and wait for them. */
  async function runs(dagId: string, n: number): Promise<number[]> {
    const pks: number[] = [];
    for (let i = 0; i < n; i++) pks.push((await triggerDagRun(cluster.database, bag.get(dagId), {}, `r${i}_${Date.now()}`)).runPk);
    for (const pk of pks) expect(await cluster.finished(pk)).toBe(RunState.SUCCESS);
    return pks;
  }

  const pick = (all: Map<string, Interval>, prefix: string | string[]) =>
    [...all].filter(([k]) => [prefix].flat().some((p) => k.startsWith(p))).map(([, v]) => v);

  it('applies each form of tag limit within a run', async () => {
    const [pk] = await runs('conc_tags', 1);
    const ids = bag.get('conc_tags').tasks.keys();
    const all = await cluster.results(pk, [...ids]);
    expect(all.size).toBe(15);

    // { key: 'database', value: 'redshift', limit: 1 }: one redshift task at a time, others unaffected.
    const redshift = pick(all, 'load_');
    expect(maxOverlap(redshift)).toBe(1);
    expect(maxOverlap([...redshift, ...pick(all, 'pg_a')])).toBe(2);

    // { key: 'region', limit: 2 }: two region-tagged tasks at once, whatever their values.
    const regions = pick(all, ['eu_', 'us_', 'ap_']);
    expect(regions).toHaveLength(5);
    expect(maxOverlap(regions)).toBe(2);

    // { key: 'customer', value: { applyLimitPerUniqueValue: true }, limit: 1 }: one per customer, customers in parallel.
    expect(maxOverlap(pick(all, 'acme_'))).toBe(1);
    expect(maxOverlap(pick(all, 'globex_'))).toBe(1);
    expect(maxOverlap(pick(all, ['acme_', 'globex_']))).toBe(2);

    // Every limit key the run's TIs were attached to is scoped to this run.
    const keys = await cluster.database.rows<{ key: string; limit: number }>(sql`
      select distinct k.key, k."limit" from ti_limit_keys k join task_instances t on t.id = k.ti_id where t.run_pk = ${pk} order by k.key`);
    expect(keys.map((k) => [k.key, Number(k.limit)])).toEqual([
      [`run:${pk}:tag0:database=redshift`, 1],
      [`run:${pk}:tag1:region`, 2],
      [`run:${pk}:tag2:customer=acme`, 1],
      [`run:${pk}:tag2:customer=globex`, 1],
    ]);
  }, 240_000);

  it('caps mapped TIs per run (maxActiveTisPerDagrun) and across runs (maxActiveTisPerDag)', async () => {
    const pks = await runs('conc_tis_limits', 2);
    const perRun: Interval[][] = [];
    const perDag: Interval[] = [];
    for (const pk of pks) {
      const r = await cluster.results(pk, ['per_run', 'per_dag']);
      perRun.push(pick(r, 'per_run'));
      perDag.push(...pick(r, 'per_dag'));
    }
    for (const list of perRun) {
      expect(list).toHaveLength(6);
      expect(maxOverlap(list)).toBe(2);
    }
    // Per run, not per DAG: both runs' TIs ran side by side.
    expect(maxOverlap(perRun.flat())).toBeGreaterThan(2);
    expect(perDag).toHaveLength(6);
    expect(maxOverlap(perDag)).toBe(2);
  }, 240_000);

  it('caps the TIs of one run with the DAG\'s maxActiveTasksPerRun, leaving other runs alone', async () => {
    const pks = await runs('conc_run_limit', 2);
    const steps = Array.from({ length: 5 }, (_, n) => `step_${n}`);
    const lists = await Promise.all(pks.map(async (pk) => [...(await cluster.results(pk, steps)).values()]));
    for (const list of lists) {
      expect(list).toHaveLength(5);
      expect(maxOverlap(list)).toBe(2);
    }
    expect(maxOverlap(lists.flat())).toBeGreaterThan(2);
  }, 240_000);
});
