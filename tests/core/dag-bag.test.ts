import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DagBag, UnknownDagError } from '../../core/index.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
const BAG = path.join(FIXTURES, 'authoring-bag');

describe('DagBag over a folder with broken files', () => {
  let bag: DagBag;
  const errorOf = (file: string) => bag.errors.get(path.join(BAG, file));

  beforeAll(async () => {
    bag = await DagBag.load(BAG);
  });

  it('loads every DAG a good file exports, with its fileloc', () => {
    const good = bag.get('bag_good');
    expect(good.fileloc).toBe(path.join(BAG, 'good.ts'));
    expect([...good.tasks.keys()]).toEqual(['extract', 'total']);
    expect(bag.get('bag_good_second').fileloc).toBe(path.join(BAG, 'good.ts'));
  });

  it('records exactly one one-line error per broken file and nothing for the rest', () => {
    const files = [...bag.errors.keys()].map((f) => path.relative(BAG, f));
    // Whichever of the two files defining "bag_shared" was imported second is the broken one.
    expect(files.filter((f) => f.startsWith('dup-id-'))).toHaveLength(1);
    expect(files.filter((f) => !f.startsWith('dup-id-')).sort()).toEqual([
      'cross-dag.ts', 'cycle.ts', 'duplicate-task.ts', 'invalid-cron.ts', 'invalid-params.ts',
      'runtime-error.ts', 'syntax-error.mjs', 'unknown-upstream.ts',
    ]);
    for (const error of bag.errors.values()) expect(error).not.toMatch(/\n/);
  });

  it('ignores helper modules without DAGs and files under dot-folders', () => {
    expect(errorOf('lib/steps.ts')).toBeUndefined();
    expect(bag.dags.has('bag_hidden')).toBe(false);
    expect([...bag.dags.keys()].sort()).toEqual(['bag_good', 'bag_good_second', 'bag_shared']);
  });

  it('names the syntax error', () => {
    expect(errorOf('syntax-error.mjs')).toMatch(/syntax/i);
  });

  it('names the cycle', () => {
    expect(errorOf('cycle.ts')).toBe('DagDefinitionError: DAG "bag_cycle": cycle detected: a -> b -> c -> a (cycle.ts:5:16)');
  });

  it('names the duplicate task id', () => {
    expect(errorOf('duplicate-task.ts')).toBe('DagDefinitionError: DAG "bag_duplicate_task", task "echo": duplicate task id (duplicate-task.ts:3:1)');
  });

  it('names the unknown upstream', () => {
    expect(errorOf('unknown-upstream.ts')).toBe('DagDefinitionError: DAG "bag_unknown_upstream", task "report": unknown upstream task "extarct" (unknown-upstream.ts:15:16)');
  });

  it('names the output used across DAGs', () => {
    expect(errorOf('cross-dag.ts')).toBe('DagDefinitionError: DAG "bag_consumer", task "consume": cannot depend on task "produce" of another DAG "bag_producer"; use an external-task sensor instead (cross-dag.ts:12:3)');
    expect(bag.dags.has('bag_producer')).toBe(false);
  });

  it('names the invalid cron', () => {
    expect(errorOf('invalid-cron.ts')).toMatch(/^DagDefinitionError: DAG "bag_invalid_cron": invalid cron expression "61 \* \* \* \*": minute value 61 is out of range 0-59/);
  });

  it('names the params schema problem', () => {
    expect(errorOf('invalid-params.ts')).toMatch(/^DagDefinitionError: DAG "bag_invalid_params": params schema rejects an empty conf, .*\(region: /);
  });

  it('names the DAG id defined twice and the file that has it', () => {
    const owner = path.basename(bag.get('bag_shared').fileloc);
    const loser = owner === 'dup-id-a.ts' ? 'dup-id-b.ts' : 'dup-id-a.ts';
    expect(errorOf(owner)).toBeUndefined();
    expect(errorOf(loser)).toBe(`DAG id "bag_shared" is already defined in ${owner}; DAG ids must be unique`);
  });

  it('says where in the DAG file a top-level error was thrown', () => {
    const error = errorOf('runtime-error.ts');
    expect(error).toMatch(/^BAG_FIXTURE_SETTING is not set/);
    expect(error).toMatch(/runtime-error\.ts:4\b/);
  });

  it('throws UnknownDagError listing the known DAGs', () => {
    expect(() => bag.get('nope')).toThrow(UnknownDagError);
    expect(() => bag.get('nope')).toThrow('unknown DAG "nope"; known DAGs: bag_good, bag_good_second, bag_shared');
  });
});

describe('DagBag.refresh()', () => {
  // Inside the project so the files can import 'updraft'.
  const dir = path.join(FIXTURES, `authoring-tmp-${randomUUID().slice(0, 8)}`);
  let bump = 0;

  /** Write a DAG file and give it a fresh mtime, so the change is seen however fast the test runs. */
  function writeDag(name: string, source: string): string {
    const file = path.join(dir, name);
    let previous = 0;
    try {
      previous = statSync(file).mtimeMs;
    } catch { /* new file */ }
    writeFileSync(file, source);
    const when = new Date(Math.max(previous, Date.now()) + 10_000 * ++bump);
    utimesSync(file, when, when);
    return file;
  }

  const dagSource = (dagId: string, taskIds: string[], extra = '') =>
    `import { dag, task } from 'updraft';\n\nexport default dag({ dagId: '${dagId}'${extra} }, () => {\n${
      taskIds.map((t) => `  task('${t}', () => null)();\n`).join('')}});\n`;

  beforeAll(() => mkdirSync(dir, { recursive: true }));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('re-imports a changed file, records a new error, clears it, and drops a deleted file', async () => {
    const file = writeDag('changing.ts', dagSource('tmp_changing', ['first']));
    const bag = await DagBag.load(dir);
    expect([...bag.get('tmp_changing').tasks.keys()]).toEqual(['first']);
    expect(await bag.refresh()).toBe(false);

    writeDag('changing.ts', dagSource('tmp_renamed', ['first', 'second']));
    expect(await bag.refresh()).toBe(true);
    expect(bag.dags.has('tmp_changing')).toBe(false);
    expect([...bag.get('tmp_renamed').tasks.keys()]).toEqual(['first', 'second']);

    writeDag('changing.ts', dagSource('tmp_renamed', ['first'], ", schedule: 'every day'"));
    expect(await bag.refresh()).toBe(true);
    expect(bag.dags.has('tmp_renamed')).toBe(false);
    expect(bag.errors.get(file)).toMatch(/^DagDefinitionError: DAG "tmp_renamed": invalid cron expression "every day"/);

    writeDag('changing.ts', dagSource('tmp_renamed', ['fixed']));
    expect(await bag.refresh()).toBe(true);
    expect(bag.errors.size).toBe(0);
    expect([...bag.get('tmp_renamed').tasks.keys()]).toEqual(['fixed']);

    unlinkSync(file);
    expect(await bag.refresh()).toBe(true);
    expect(bag.dags.size).toBe(0);
    expect(bag.errors.size).toBe(0);
  });

  it('drops the error of a deleted broken file', async () => {
    const broken = writeDag('broken.ts', dagSource('tmp_broken', ['x'], ", timezone: 'Nowhere/City'"));
    const bag = await DagBag.load(dir);
    expect(bag.errors.get(broken)).toMatch(/invalid timezone "Nowhere\/City"/);
    unlinkSync(broken);
    expect(await bag.refresh()).toBe(true);
    expect(bag.errors.size).toBe(0);
  });

  it('loads the other definition of a duplicated DAG id once the first file is deleted', async () => {
    const a = writeDag('dup-a.ts', dagSource('tmp_shared', ['from_a']));
    const b = writeDag('dup-b.ts', dagSource('tmp_shared', ['from_b']));
    const bag = await DagBag.load(dir);
    const owner = bag.get('tmp_shared').fileloc;
    const other = owner === a ? b : a;
    expect(bag.errors.get(other)).toMatch(/^DAG id "tmp_shared" is already defined in /);

    unlinkSync(owner);
    await bag.refresh();
    expect(bag.errors.has(other)).toBe(false);
    expect(bag.get('tmp_shared').fileloc).toBe(other);
  });
});
