/**
 * Reading dbt projects at import: the example shop project's nodes, configs and graph;
 * selection; and the errors a broken project gets (file and line). No BigQuery here.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadDbtGraph, DbtProjectError } from '../../../providers/dbt/index.ts';

const SHOP = path.resolve('dags/dbt/shop');
const temps: string[] = [];
afterAll(() => { for (const d of temps) rmSync(d, { recursive: true, force: true }); });

const PROFILE = 'p:\n  target: dev\n  outputs:\n    dev:\n      type: bigquery\n      project: proj\n      dataset: ds\n';

/** A project in a temporary folder: file path → content. */
function project(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'updraft-dbt-'));
  temps.push(dir);
  const all = { 'dbt_project.yml': 'name: p\nprofile: p\n', 'profiles.yml': PROFILE, ...files };
  for (const [file, text] of Object.entries(all)) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), text);
  }
  return dir;
}

const ids = (g: ReturnType<typeof loadDbtGraph>) => g.selected.map((n) => n.uniqueId).sort();

describe('the shop project', () => {
  const g = loadDbtGraph({ projectDir: SHOP });
  const node = (id: string) => g.project.nodes.get(id)!;

  it('reads models, seeds, sources and tests, with the target from profiles.yml', () => {
    expect(g.target).toEqual({ name: 'dev', type: 'bigquery', project: 'example', schema: 'shop', location: 'US', threads: 4 });
    expect(ids(g).filter((i) => !i.startsWith('test.'))).toEqual([
      'model.shop.customer_orders', 'model.shop.order_payments', 'model.shop.orders', 'model.shop.stg_customers', 'model.shop.stg_orders', 'model.shop.stg_payments',
      'seed.shop.order_statuses', 'seed.shop.raw_customers',
    ]);
    expect(ids(g).filter((i) => i.startsWith('test.'))).toContain('test.shop.not_null_stg_orders_order_id');
    expect(ids(g).filter((i) => i.startsWith('test.'))).toContain('test.shop.assert_paid_not_above_amount');
    expect([...g.project.sources.keys()]).toEqual(['landing.orders', 'landing.payments']);
  });

  it('resolves configs: dbt_project.yml by folder, schema.yml, then config() in SQL', () => {
    expect(node('model.shop.stg_orders').config).toMatchObject({ materialized: 'view', schema: 'staging' });
    expect(node('model.shop.order_payments').config.materialized).toBe('ephemeral');
    expect(node('model.shop.orders').config).toMatchObject({ materialized: 'incremental', unique_key: 'order_id', on_schema_change: 'append_new_columns', schema: 'marts', tags: ['marts'], labels: { team: 'analytics' } });
    expect(node('model.shop.customer_orders').config).toMatchObject({ materialized: 'table', cluster_by: ['country'], persist_docs: { relation: true } });
    expect(node('seed.shop.raw_customers').config).toMatchObject({ schema: 'raw', column_types: { customer_id: 'INT64' } });
  });

  it('builds the graph from ref() and source(), and tests depend on what they test', () => {
    expect(node('model.shop.orders').dependsOn.sort()).toEqual(['model.shop.order_payments', 'model.shop.stg_orders']);
    expect(node('model.shop.stg_customers').dependsOn).toEqual(['seed.shop.raw_customers']);
    expect(node('model.shop.stg_orders').sources).toEqual([{ source: 'landing', table: 'orders', line: 7 }]);
    expect(node('test.shop.relationships_stg_orders_customer_id_stg_customers__customer_id').dependsOn.sort()).toEqual(['model.shop.stg_customers', 'model.shop.stg_orders']);
  });
});

describe('selection', () => {
  const sel = (select?: string | string[], exclude?: string) => ids(loadDbtGraph({ projectDir: SHOP, select, exclude })).filter((i) => !i.startsWith('test.'));

  it('by name, tag, path and config', () => {
    expect(sel('stg_orders')).toEqual(['model.shop.stg_orders']);
    expect(sel('tag:marts')).toEqual(['model.shop.customer_orders', 'model.shop.orders']);
    expect(sel('path:models/staging')).toEqual(['model.shop.stg_customers', 'model.shop.stg_orders', 'model.shop.stg_payments']);
    expect(sel('config.materialized:incremental')).toEqual(['model.shop.orders']);
    expect(sel(['stg_orders', 'stg_payments'])).toEqual(['model.shop.stg_orders', 'model.shop.stg_payments']);
    expect(sel('tag:marts,config.materialized:table')).toEqual(['model.shop.customer_orders']);
  });

  it('with graph operators', () => {
    expect(sel('+orders')).toEqual(['model.shop.order_payments', 'model.shop.orders', 'model.shop.stg_orders', 'model.shop.stg_payments']);
    expect(sel('stg_customers+')).toEqual(['model.shop.customer_orders', 'model.shop.stg_customers']);
    expect(sel('1+customer_orders')).toEqual(['model.shop.customer_orders', 'model.shop.orders', 'model.shop.stg_customers']);
    expect(sel('+customer_orders', 'tag:marts')).toEqual(['model.shop.order_payments', 'model.shop.stg_customers', 'model.shop.stg_orders', 'model.shop.stg_payments', 'seed.shop.raw_customers']);
  });

  it('keeps a test only when everything it tests is selected', () => {
    const tests = ids(loadDbtGraph({ projectDir: SHOP, select: 'stg_orders' })).filter((i) => i.startsWith('test.'));
    expect(tests).toContain('test.shop.not_null_stg_orders_order_id');
    expect(tests).not.toContain('test.shop.relationships_stg_orders_customer_id_stg_customers__customer_id');
  });
});

describe('errors name the file and line', () => {
  const fails = (files: Record<string, string>) => {
    try {
      loadDbtGraph({ projectDir: project(files) });
    } catch (err) {
      expect(err).toBeInstanceOf(DbtProjectError);
      return (err as Error).message;
    }
    throw new Error('the project loaded');
  };

  it('an unknown ref', () => {
    expect(fails({ 'models/a.sql': 'select 1 as x', 'models/b.sql': "select *\nfrom {{ ref('aa') }}" })).toBe("dbt project: models/b.sql:2: ref('aa') names no model or seed; did you mean a?");
  });
  it('an undeclared source', () => {
    expect(fails({ 'models/a.sql': "select * from {{ source('raw', 'x') }}" })).toMatch(/^dbt project: models\/a\.sql:1: source\('raw', 'x'\) is not declared/);
  });
  it('a cycle', () => {
    expect(fails({ 'models/a.sql': "select * from {{ ref('b') }}", 'models/b.sql': "select * from {{ ref('a') }}" })).toMatch(/^dbt project: models\/a\.sql: the models form a cycle: a → b → a$/);
  });
  it('a YAML syntax error', () => {
    expect(fails({ 'models/schema.yml': 'version: 2\nmodels:\n  - name: a\n    columns: [x\n' , 'models/a.sql': 'select 1' })).toMatch(/^dbt project: models\/schema\.yml:\d+: YAML: /);
  });
  it('Jinja syntax errors: an unclosed block, an unbalanced call, a stray end tag', () => {
    expect(fails({ 'models/a.sql': "select 1\n{% if var('x', true) %}\nwhere 1 = 1\n" })).toBe('dbt project: models/a.sql:2: "{% if %}" is never closed with "{% endif %}"');
    expect(fails({ 'models/a.sql': "select 1\n\nfrom {{ ref('b' }}" })).toMatch(/^dbt project: models\/a\.sql:3: unexpected "\}"|^dbt project: models\/a\.sql:3: "\)" expected/);
    expect(fails({ 'macros/m.sql': '{% macro m() %}x{% endmacro %}\n{% endif %}', 'models/a.sql': 'select 1' })).toBe('dbt project: macros/m.sql:2: "endif" has no block to close');
  });
  it('an unknown materialization, a missing package, an unknown test', () => {
    expect(fails({ 'models/a.sql': "{{ config(materialized='snapshotty') }}\nselect 1" })).toMatch(/^dbt project: models\/a\.sql: unknown materialization "snapshotty"; Updraft runs table, view, incremental, ephemeral$/);
    expect(fails({ 'packages.yml': 'packages:\n  - package: dbt-labs/dbt_utils\n    version: 1.1.1\n', 'models/a.sql': 'select 1' })).toMatch(/^dbt project: packages\.yml: the project depends on 1 package\(s\), but dbt_packages\/ is missing/);
    expect(fails({ 'models/a.sql': 'select 1 as x', 'models/s.yml': 'models:\n  - name: a\n    columns:\n      - name: x\n        tests: [is_even]\n' })).toMatch(/^dbt project: models\/s\.yml:5: unknown test "is_even" on a\.x/);
  });
  it('a profile that is not BigQuery', () => {
    expect(fails({ 'profiles.yml': 'p:\n  outputs:\n    dev:\n      type: postgres\n      schema: s\n', 'models/a.sql': 'select 1' })).toMatch(/target "dev" is of type "postgres"; Updraft runs dbt projects on BigQuery only/);
  });
  it('ignores keys it has no use for', () => {
    const dir = project({ 'dbt_project.yml': 'name: p\nprofile: p\nrequire-dbt-version: ">=1.5"\nclean-targets: [target]\ndocs-paths: [docs]\n', 'models/a.sql': 'select 1 as x', 'models/e.yml': 'exposures:\n  - name: dash\n    type: dashboard\n' });
    expect(ids(loadDbtGraph({ projectDir: dir }))).toEqual(['model.p.a']);
  });
});

describe('computed refs and config', () => {
  it('renders a model whose calls take computed arguments to learn them', () => {
    const dir = project({
      'models/a.sql': 'select 1 as x',
      'models/b.sql': "{% set m = 'table' %}{{ config(materialized=m) }}\n{% for t in ['a'] %}select * from {{ ref(t) }}{% endfor %}",
    });
    const b = loadDbtGraph({ projectDir: dir }).project.nodes.get('model.p.b')!;
    expect(b.dependsOn).toEqual(['model.p.a']);
    expect(b.config.materialized).toBe('table');
  });
});
