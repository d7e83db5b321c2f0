/**
 * The SQL of each materialization against golden files (tests/providers/dbt/golden; regenerate
 * with UPDRAFT_UPDATE_GOLDEN=1 and review the diff), ephemeral CTE inlining, and dbt's Jinja as
 * Updraft renders it: `do`, `return()`, macros, and the context functions.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { injectCtes, materialize, type DbtNode, type DbtConfig } from '../../../providers/dbt/index.ts';
import { Relation, renderNames, type RenderEnv } from '../../../providers/dbt/context.ts';
import { DbtJinja } from '../../../providers/dbt/jinja.ts';
import { finishConfig } from '../../../providers/dbt/config.ts';
import { loadDbtGraph } from '../../../providers/dbt/load.ts';

const GOLDEN = path.resolve('tests/providers/dbt/golden');

function golden(name: string, actual: string): void {
  const file = path.join(GOLDEN, `${name}.sql`);
  if (process.env.UPDRAFT_UPDATE_GOLDEN || !existsSync(file)) writeFileSync(file, actual);
  expect(actual).toBe(readFileSync(file, 'utf8'));
}

const node = (config: Partial<DbtConfig>, description?: string): DbtNode => ({
  uniqueId: 'model.shop.orders', kind: 'model', name: 'orders', path: 'models/orders.sql', folders: [], raw: '', refs: [], sources: [], dependsOn: [],
  config: finishConfig(config as Record<string, unknown>, 'view'), description,
});
const rel = new Relation('proj', 'shop', 'orders');
const select = 'select order_id, day, amount\nfrom `proj`.`shop`.`stg_orders`';
const make = (config: Partial<DbtConfig>, existingColumns: string[] | null = null, hooks: { pre?: string[]; post?: string[] } = {}, description?: string) =>
  materialize({ node: node(config, description), relation: rel, sql: select, existingColumns, preHooks: hooks.pre ?? [], postHooks: hooks.post ?? [] });

describe('materializations', () => {
  it('table, with partitioning, clustering, labels and a description', () => {
    const m = make({ materialized: 'table', partition_by: { field: 'day', data_type: 'date', granularity: 'month' }, cluster_by: ['order_id'], labels: { team: 'data' }, persist_docs: { relation: true } }, null, {}, 'Orders, one row each.');
    expect(m.strategy).toBe('table');
    golden('table', m.script);
  });
  it('view', () => golden('view', make({ materialized: 'view' }).script));
  it('incremental: the first run (or a full refresh) builds the table', () => {
    const m = make({ materialized: 'incremental', unique_key: 'order_id' }, null);
    expect(m.strategy).toBe('table');
    golden('incremental-first', m.script);
  });
  it('incremental: merge on a unique key (a list)', () => {
    const m = make({ materialized: 'incremental', unique_key: ['order_id', 'day'] }, ['order_id', 'day', 'amount']);
    expect(m.strategy).toBe('merge');
    golden('incremental-merge', m.script);
  });
  it('incremental: append without a key', () => {
    const m = make({ materialized: 'incremental' }, ['order_id', 'day', 'amount']);
    expect(m.strategy).toBe('append');
    golden('incremental-append', m.script);
  });
  it('incremental: insert_overwrite of the partitions the new rows touch, in one transaction', () => {
    const m = make({ materialized: 'incremental', incremental_strategy: 'insert_overwrite', partition_by: { field: 'day', data_type: 'date' } }, ['order_id', 'day', 'amount']);
    expect(m.strategy).toBe('insert_overwrite');
    golden('incremental-insert-overwrite', m.script);
  });
  it('pre- and post-hooks in the same script', () => {
    golden('hooks', make({ materialized: 'table' }, null, { pre: ['delete from `proj`.`shop`.`audit` where true'], post: ['insert into `proj`.`shop`.`audit` values (1);'] }).script);
  });
  it('refuses an unknown strategy and insert_overwrite without partitions', () => {
    expect(() => make({ materialized: 'incremental', incremental_strategy: 'microbatch' }, ['a'])).toThrow('models/orders.sql: incremental_strategy "microbatch" is not one of merge, append, insert_overwrite');
    expect(() => make({ materialized: 'incremental', incremental_strategy: 'insert_overwrite' }, ['a'])).toThrow('incremental_strategy insert_overwrite needs partition_by');
  });
  it('ephemeral models become CTEs, joining a WITH the model already has', () => {
    const ctes = [{ name: 'a', sql: 'select 1 as x' }, { name: 'b', sql: 'select x from __dbt__cte__a' }];
    expect(injectCtes('select * from __dbt__cte__b', ctes)).toBe('with __dbt__cte__a as (\nselect 1 as x\n),\n__dbt__cte__b as (\nselect x from __dbt__cte__a\n)\nselect * from __dbt__cte__b');
    expect(injectCtes('-- note\nWITH t as (select 2) select * from t, __dbt__cte__a', ctes.slice(0, 1))).toBe('-- note\nwith __dbt__cte__a as (\nselect 1 as x\n),\nt as (select 2) select * from t, __dbt__cte__a');
  });
});

describe('dbt Jinja on nunjucks', () => {
  const graph = loadDbtGraph({ projectDir: path.resolve('dags/dbt/shop') });
  const env = (over: Partial<RenderEnv> = {}): RenderEnv => ({
    project: graph.project, jinja: graph.jinja(), target: graph.target, vars: { ...graph.vars, currency_divisor: 10 }, execute: true, fullRefresh: false,
    runStartedAt: new Date('2026-03-04T05:06:07Z'), invocationId: 'inv-1', existing: new Set(), ...over,
  });
  const render = (src: string, e = env(), n = graph.project.nodes.get('model.shop.orders')!) =>
    e.jinja.renderString(src, 'models/x.sql', renderNames(e, n, { refs: [], sources: [], config: [], ephemerals: new Set() }, (x) => new Relation('example', 'shop', x.name)));

  it('runs do, return() and the project\'s macros', () => {
    expect(render("{{ cents_to_dollars('c') }}")).toBe('round(c / 10, 2)');
    expect(render('{% for s in counted_statuses() %}{{ s }} {% endfor %}')).toBe('placed shipped completed returned ');
    const jinja = new DbtJinja([{ path: 'macros/m.sql', source: "{% macro pick(x) %}{% if x > 1 %}{{ return('big') }}{% endif %}{{ return('small') }}{% endmacro %}" }]);
    expect(jinja.renderString('{{ pick(2) }} {{ pick(0) }}', 'm.sql', {})).toBe('big small');
    expect(() => jinja.renderString('{{ return(1) }}', 'models/y.sql', {})).toThrow('dbt project: models/y.sql:1: return() is only valid inside a macro');
  });
  it('gives ref, source, this, target, var, env_var, is_incremental, run_started_at and invocation_id', () => {
    process.env.UPDRAFT_DBT_TEST_VAR = 'from-env';
    expect(render("{{ ref('stg_orders') }} {{ source('landing', 'orders') }} {{ this }}")).toBe('`example`.`shop`.`stg_orders` `example`.`shop_landing`.`orders` `example`.`shop`.`orders`');
    expect(render("{{ target.project }}/{{ target.dataset }} {{ var('currency_divisor') }} {{ var('nope', 'd') }} {{ env_var('UPDRAFT_DBT_TEST_VAR') }}")).toBe('example/shop 10 d from-env');
    expect(render("{{ run_started_at.strftime('%Y-%m-%d') }} {{ invocation_id }} {{ modules.datetime.timedelta(days=1).total_seconds() }}")).toBe('2026-03-04 inv-1 86400');
    expect(render('{{ is_incremental() }}')).toBe('false');
    expect(render('{{ is_incremental() }}', env({ existing: new Set(['model.shop.orders']) }))).toBe('true');
    expect(render('{{ is_incremental() }}', env({ existing: new Set(['model.shop.orders']), fullRefresh: true }))).toBe('false');
    expect(render("{{ adapter.quote('order') }} {{ log('hi') }}{{ ref('order_payments') }}")).toBe('`order` __dbt__cte__order_payments');
  });
  it('fails with the model\'s file for a required var, raise_compiler_error, and run_query without a connection', () => {
    expect(() => render("\n{{ var('missing') }}")).toThrow("dbt project: models/x.sql:2: required var 'missing' not found");
    expect(() => render("{{ exceptions.raise_compiler_error('stop here') }}")).toThrow(/^dbt project: models\/x\.sql:1: stop here$/);
    expect(() => render("{% set r = run_query('select 1') %}")).toThrow('dbt project: models/x.sql:1: run_query and statement need a BigQuery connection');
    expect(render("{% set r = run_query('select 1') %}{{ r }}", env({ execute: false }))).toBe('');
  });
});
