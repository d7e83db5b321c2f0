import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildTemplateContext, renderFields, strftime, strptime, TemplateRenderError,
  type RenderRequest, type TemplateLookups,
} from '../../../core/templates/render.ts';

const VARIABLES: Record<string, string> = {
  bucket: 'raw-data',
  cfg: '{"limit": 7, "nested": {"table": "events"}, "empty": null}',
  mode: 'full',
  broken: '{not json',
};

const CONNECTIONS: Record<string, Record<string, unknown>> = {
  warehouse: {
    conn_id: 'warehouse', connId: 'warehouse', conn_type: 'postgres', connType: 'postgres', host: 'db.internal',
    schema: 'analytics', login: 'etl', password: 's3cret', port: 5432, extra: { sslmode: 'require' },
  },
};

/** Lookups over fixed data that count how often each name is asked for. */
function fakeLookups() {
  const calls: string[] = [];
  const lookups: TemplateLookups = {
    variable: async (key) => { calls.push(`var:${key}`); return VARIABLES[key]; },
    connection: async (id) => { calls.push(`conn:${id}`); return CONNECTIONS[id]; },
  };
  return { calls, lookups };
}

const context = () => buildTemplateContext({
  dagId: 'daily_etl', taskId: 'load', runId: 'scheduled__2024-01-02T03:04:05+00:00', mapIndex: 2, tryNumber: 3,
  logicalDate: new Date('2024-01-02T03:04:05Z'),
  dataIntervalStart: new Date('2024-01-01T03:04:05Z'), dataIntervalEnd: new Date('2024-01-02T03:04:05Z'),
  params: { limit: 10, tables: ['a', 'b'] }, conf: { region: 'eu' }, runType: 'scheduled',
});

function request(fields: Record<string, unknown>, extra: Partial<RenderRequest> = {}): RenderRequest {
  return {
    fields, templateExt: ['.sql', '.json'], searchPath: [], context: context(), lookups: fakeLookups().lookups,
    where: { dagId: 'daily_etl', taskId: 'load' }, ...extra,
  };
}

const render1 = async (template: string, extra: Partial<RenderRequest> = {}) => (await renderFields(request({ f: template }, extra))).f;

async function renderError(fields: Record<string, unknown>, extra: Partial<RenderRequest> = {}): Promise<TemplateRenderError> {
  const error = await renderFields(request(fields, extra)).then(() => null, (e: unknown) => e);
  expect(error).toBeInstanceOf(TemplateRenderError);
  return error as TemplateRenderError;
}

describe('the template context', () => {
  it.each([
    ['{{ ds }}', '2024-01-02'],
    ['{{ ds_nodash }}', '20240102'],
    ['{{ ts }}', '2024-01-02T03:04:05+00:00'],
    ['{{ ts_nodash }}', '20240102T030405'],
    ['{{ ts_nodash_with_tz }}', '20240102T030405+0000'],
    ['{{ logical_date }}', '2024-01-02T03:04:05+00:00'],
    ['{{ logical_date.strftime("%Y/%m/%d %H:%M") }} {{ logical_date.year }}', '2024/01/02 03:04 2024'],
    ['{{ data_interval_start }} {{ data_interval_end }}', '2024-01-01T03:04:05+00:00 2024-01-02T03:04:05+00:00'],
    ['{{ params.limit }} {{ params.tables | join(",") }} {{ params.tables[1] }}', '10 a,b b'],
    ['{{ run_id }}', 'scheduled__2024-01-02T03:04:05+00:00'],
    ['{{ dag_run.run_id }} {{ dag_run.conf.region }} {{ dag_run.run_type }} {{ dag_run.logical_date }}', 'scheduled__2024-01-02T03:04:05+00:00 eu scheduled 2024-01-02T03:04:05+00:00'],
    ['{{ dag.dag_id }} {{ task.task_id }}', 'daily_etl load'],
    ['{{ ti.dag_id }} {{ ti.task_id }} {{ ti.try_number }} {{ ti.map_index }} {{ ti.run_id == run_id }}', 'daily_etl load 3 2 true'],
    ['{{ task_instance_key_str }}', 'daily_etl__load__20240102'],
    ['{{ macros.ds_add(ds, 30) }} {{ macros.ds_add("2024-03-01", -1) }}', '2024-02-01 2024-02-29'],
    ['{{ macros.ds_format(ds, "%Y-%m-%d", "%d/%m/%y %j %a %A %b %B %%") }}', '02/01/24 002 Tue Tuesday Jan January %'],
    ['{{ macros.ds_format("20240102 23:59:58", "%Y%m%d %H:%M:%S", "%H-%M-%S") }}', '23-59-58'],
    ['{{ macros.date_add(logical_date, days=-1, hours=2) }}', '2024-01-01T05:04:05+00:00'],
    ['{{ macros.datetime(2024, 3, 1).strftime("%A") }}', 'Friday'],
  ])('renders %s', async (template, expected) => {
    expect(await render1(template)).toBe(expected);
  });

  it('gives a run without a data interval the logical date for both ends, as Airflow does', async () => {
    const ctx = buildTemplateContext({
      dagId: 'd', taskId: 't', runId: 'manual__1', mapIndex: -1, tryNumber: 1, logicalDate: new Date('2024-05-06T00:00:00Z'),
      dataIntervalStart: null, dataIntervalEnd: null, params: {}, conf: {},
    });
    expect(await render1('{{ data_interval_start }}|{{ data_interval_end }}', { context: ctx })).toBe('2024-05-06T00:00:00+00:00|2024-05-06T00:00:00+00:00');
  });

  it('formats and parses Python-style date directives', () => {
    const date = strptime('Mon 05 Feb 2024 01:02:03 PM', '%a %d %b %Y %I:%M:%S %p');
    expect(date.toISOString()).toBe('2024-02-05T13:02:03.000Z');
    expect(strftime(date, '%y%m%d %H%M%S %j %B')).toBe('240205 130203 036 February');
    expect(strptime('2024-060', '%Y-%j').toISOString()).toBe('2024-02-29T00:00:00.000Z');
    expect(strptime('2024-01-02T03:04:05+0200', '%Y-%m-%dT%H:%M:%S%z').toISOString()).toBe('2024-01-02T01:04:05.000Z');
    expect(() => strptime('2024-02-30', '%Y-%m-%d')).toThrow(/not a valid date/);
    expect(() => strptime('02/01/2024', '%Y-%m-%d')).toThrow(/does not match format/);
  });
});

describe('variables, connections, macros and filters', () => {
  it('reads var.value as raw text and var.json as parsed JSON', async () => {
    expect(await render1('{{ var.value.bucket }} {{ var.value.cfg }}')).toBe(`raw-data ${VARIABLES.cfg}`);
    expect(await render1('{{ var.json.cfg.limit }} {{ var.json.cfg.nested.table }} {{ var.json.cfg["limit"] + 1 }}')).toBe('7 events 8');
    expect(await render1('{{ var.value.get("nope", "fallback") }} {{ var.value.get("bucket", "fallback") }}')).toBe('fallback raw-data');
  });

  it('reads connection fields, with extra_dejson as in Airflow', async () => {
    expect(await render1('{{ conn.warehouse.host }}:{{ conn.warehouse.port }}/{{ conn.warehouse.schema }} as {{ conn.warehouse.login }}'))
      .toBe('db.internal:5432/analytics as etl');
    expect(await render1('{{ conn.warehouse.extra.sslmode }} {{ conn.warehouse.extra_dejson.sslmode }} {{ conn.warehouse.conn_type }} {{ conn.warehouse.connId }}'))
      .toBe('require require postgres warehouse');
  });

  it('looks each variable and connection up once per call, however often and wherever it is used', async () => {
    const { calls, lookups } = fakeLookups();
    const out = await renderFields(request({
      a: '{{ var.value.bucket }}/{{ var.value.bucket }}/{% for t in params.tables %}{{ var.value.bucket }}-{{ t }} {% endfor %}',
      b: ['{{ var.value.bucket }}', '{{ conn.warehouse.host }} {{ conn.warehouse.port }}'],
      c: '{% for i in range(3) %}{{ var.json.cfg.limit }}{{ var.value.nope | default("") }}{% endfor %}',
      d: '{% if var.value.mode == "full" %}{{ conn.warehouse.login }}{% endif %}',
    }, { lookups }));
    expect(out).toEqual({
      a: 'raw-data/raw-data/raw-data-a raw-data-b ',
      b: ['raw-data', 'db.internal 5432'],
      c: '777',
      d: 'etl',
    });
    expect(calls.filter((c) => c === 'var:bucket')).toHaveLength(1);
    expect([...calls].sort()).toEqual(['conn:warehouse', 'var:bucket', 'var:cfg', 'var:mode', 'var:nope']);
  });

  it('follows lookups that depend on other lookups', async () => {
    const { calls, lookups } = fakeLookups();
    expect(await render1('{% if var.value.mode == "full" %}{{ var.value.bucket }}{% endif %}', { lookups })).toBe('raw-data');
    expect(calls).toEqual(['var:mode', 'var:bucket']);
  });

  it('reads XComs of the run with ti.xcom_pull, fetched between passes', async () => {
    const asked: string[] = [];
    const store: Record<string, unknown> = { 'setup/return_value/-1': { table: 'orders' }, 'setup/sql/-1': 'select 1', 'other/return_value/-1': 7 };
    const lookups: TemplateLookups = {
      ...fakeLookups().lookups,
      xcom: async (taskId, key, mapIndex) => { asked.push(`${taskId}/${key}/${mapIndex}`); return store[`${taskId}/${key}/${mapIndex}`]; },
    };
    expect(await render1("{{ ti.xcom_pull('setup').table }} {{ ti.xcom_pull(task_ids='setup', key='sql') }} {{ task_instance.xcom_pull(task_ids=['setup', 'other'])[1] }}", { lookups }))
      .toBe('orders select 1 7');
    expect(asked.sort()).toEqual(['other/return_value/-1', 'setup/return_value/-1', 'setup/sql/-1']);
    await expect(render1("{{ ti.xcom_pull('setup') }}")).rejects.toThrow('ti.xcom_pull needs a run to read from; render it for an existing run (updraft tasks render --run-id)');
  });

  it('offers user macros top-level and under macros, and registers user filters', async () => {
    const extra: Partial<RenderRequest> = {
      userDefinedMacros: { project: 'acme', qualify: (t: string) => `acme.${t}`, settings: { region: 'eu' } },
      userDefinedFilters: { shout: (s: string, mark = '!') => `${String(s).toUpperCase()}${mark}` },
    };
    expect(await render1('{{ project }} {{ qualify("events") }} {{ macros.qualify("x") }} {{ settings.region }}', extra)).toBe('acme acme.events acme.x eu');
    expect(await render1('{{ project | shout }} {{ ds | shout("?") }}', extra)).toBe('ACME! 2024-01-02?');
    expect(await render1('{{ macros.ds_add(ds, 1) }}', extra)).toBe('2024-01-03');
  });
});

describe('fields', () => {
  it('renders strings inside arrays and plain objects, leaving keys and other values alone', async () => {
    const date = new Date('2020-01-01T00:00:00Z');
    const fn = () => 1;
    const out = await renderFields(request({
      cmd: ['echo', '{{ ds }}', { '{{ ds }}': '{{ ds_nodash }}', n: 1 }],
      env: { DAY: '{{ ds }}', nested: { deep: ['{{ params.limit }}'] } },
      count: 42, flag: false, nothing: null, missing: undefined, when: date, fn,
    }));
    expect(out).toEqual({
      cmd: ['echo', '2024-01-02', { '{{ ds }}': '20240102', n: 1 }],
      env: { DAY: '2024-01-02', nested: { deep: ['10'] } },
      count: 42, flag: false, nothing: null, missing: undefined, when: date, fn,
    });
    expect(out.when).toBe(date);
  });

  it('does not mutate its input', async () => {
    const params = { limit: 10, tables: ['a', 'b'] };
    const fields = { sql: 'select {{ params.limit }}', list: ['{{ ds }}', { k: '{{ ds }}' }] };
    const ctx = context();
    ctx.params = params;
    const macros = { push: (xs: unknown[]) => { xs.push('mutated'); return xs.length; } };
    const before = structuredClone({ fields, params });
    await renderFields(request(fields, { context: ctx, userDefinedMacros: macros }));
    await render1('{{ push(params.tables) }}', { context: ctx, userDefinedMacros: macros });
    expect({ fields, params }).toEqual(before);
  });

  it('drops a template\'s single trailing newline, as Jinja does', async () => {
    expect(await render1('echo {{ ds }}\n')).toBe('echo 2024-01-02');
  });
});

describe('template files', () => {
  let dir: string;
  let other: string;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'updraft-templates-'));
    other = mkdtempSync(path.join(tmpdir(), 'updraft-templates-extra-'));
    mkdirSync(path.join(dir, 'sql'));
    writeFileSync(path.join(dir, 'sql', 'load.sql'), "{% import 'macros.sql' as m %}insert into {{ m.table('events') }}\nselect * from staging where day = '{{ ds }}'\n{% include 'sql/filter.sql' %}\n");
    writeFileSync(path.join(dir, 'sql', 'filter.sql'), 'and bucket = \'{{ var.value.bucket }}\' limit {{ params.limit }}\n');
    writeFileSync(path.join(other, 'macros.sql'), '{% macro table(name) %}{{ dag.dag_id }}.{{ name }}{% endmacro %}');
    writeFileSync(path.join(dir, 'broken.sql'), 'select\n  {{ params.nope }}');
    writeFileSync(path.join(dir, 'syntax.sql'), 'select\n  {{ a b }}');
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(other, { recursive: true, force: true });
  });

  it('renders a file from the search path, with include and import across its folders', async () => {
    const out = await renderFields(request({ sql: 'sql/load.sql', nested: { q: 'sql/filter.sql' } }, { searchPath: [dir, other] }));
    expect(out.sql).toBe("insert into daily_etl.events\nselect * from staging where day = '2024-01-02'\nand bucket = 'raw-data' limit 10");
    expect(out.nested).toEqual({ q: "and bucket = 'raw-data' limit 10" });
  });

  it('treats a value as a file only when it is one line, without template syntax, ending in a template extension', async () => {
    const out = await renderFields(request({
      a: 'select 1 -- not a file.sql\n', b: '{{ "sql/load" }}.sql', c: 'sql/load.sqlx', d: 'notes.txt',
    }, { searchPath: [dir, other] }));
    expect(out).toEqual({ a: 'select 1 -- not a file.sql', b: 'sql/load.sql', c: 'sql/load.sqlx', d: 'notes.txt' });
  });

  it('fails on a missing file, naming the field, the file and the folders searched', async () => {
    const error = await renderError({ sql: 'sql/nope.sql' }, { searchPath: [dir, other] });
    expect(error.field).toBe('sql');
    expect(error.template).toBe('sql/nope.sql');
    expect(error.message).toContain('field "sql"');
    expect(error.message).toContain('sql/nope.sql');
    expect(error.message).toContain(`${dir}, ${other}`);
  });

  it('names the file and line of an undefined name in a file', async () => {
    const error = await renderError({ sql: 'broken.sql' }, { searchPath: [dir] });
    expect(error.undefinedName).toBe('params.nope');
    expect(error.message).toContain('template file "broken.sql"');
    expect(error.message).toContain(`line 2, column 3 of ${path.join(dir, 'broken.sql')}`);
  });

  it('reports a syntax error with its line and column', async () => {
    const error = await renderError({ sql: 'syntax.sql' }, { searchPath: [dir] });
    expect(error.message).toMatch(/expected variable end \(line 2, column \d+ of .*syntax\.sql\)/);
    const inline = await renderError({ f: 'ok\n{% if %}' });
    expect(inline.message).toContain('(line 2, column 7)');
  });
});

describe('undefined names', () => {
  it.each([
    ['{{ nope }}', 'nope', 'userDefinedMacros'],
    ['select {{ params.x }} from t', 'params.x', 'params'],
    ['{{ params.tables[5] }}', 'params.tables[5]', 'params'],
    ['{{ dag_run.conf.missing }}', 'dag_run.conf.missing', "the run's conf"],
    ['{{ var.value.missing_key }}', 'var.value.missing_key', 'Set the variable "missing_key"'],
    ['{{ var.json.cfg.nope }}', 'var.json.cfg.nope', 'holds JSON without that key'],
    ['{{ conn.nope.host }}', 'conn.nope', 'Create the connection "nope"'],
    ['{{ conn.warehouse.nope }}', 'conn.warehouse.nope', 'has no field "nope"'],
    ['{{ macros.nope(ds) }}', 'macros.nope', 'userDefinedMacros'],
    ['{{ params.x | upper }}', 'params.x', 'params'],
  ])('%s fails naming %s', async (template, name, todo) => {
    const error = await renderError({ sql: template });
    expect(error.undefinedName).toBe(name);
    expect(error.field).toBe('sql');
    expect(error.template).toBe(template);
    expect(error.retryable).toBe(false);
    expect(error.name).toBe('TemplateRenderError');
    expect(error.message).toContain('DAG "daily_etl", task "load"');
    expect(error.message).toContain('field "sql"');
    expect(error.message).toContain(template);
    expect(error.message).toContain(`"${name}" is undefined`);
    expect(error.message).toContain(todo);
  });

  it('names the path of a nested field and shortens a long inline template', async () => {
    const long = `select ${'x, '.repeat(40)}{{ params.nope }}`;
    const error = await renderError({ op_kwargs: { queries: ['ok', long] } });
    expect(error.field).toBe('op_kwargs.queries[1]');
    expect(error.template).toBe(`${long.slice(0, 79)}…`);
    expect(error.message).toContain(long.slice(0, 79));
  });

  it('lets default and is defined handle missing names', async () => {
    expect(await render1([
      '{{ params.x | default(5) }}', '{{ params.x | d("d") }}', '{{ nope | default("top") }}',
      '{% if params.x is defined %}yes{% else %}no{% endif %}', '{% if nope is undefined %}undef{% endif %}',
      '{{ var.value.missing | default("v") }}', '{{ conn.nope.host | default("h") }}',
      '{% if var.value.missing is defined %}yes{% else %}no{% endif %}',
    ].join(' '))).toBe('5 d top no undef v h no');
  });

  it('does not blame a name a default handled for a later null', async () => {
    const error = await renderError({ f: '{{ params.x | default(1) }} {{ var.json.cfg.empty }}' });
    expect(error.undefinedName).toBeNull();
    expect(error.message).toContain('"var.json.cfg.empty" is null');
  });

  it('fails clearly on a variable that is not JSON', async () => {
    const error = await renderError({ f: '{{ var.json.broken.x | default(1) }}' });
    expect(error.message).toContain('variable "broken" is not valid JSON');
  });

  it('lets a lookup failure through unchanged, so the task can retry it', async () => {
    const down = new Error('secrets backend unreachable');
    const lookups: TemplateLookups = { variable: async () => { throw down; }, connection: async () => undefined };
    await expect(render1('{{ var.value.bucket }}', { lookups })).rejects.toBe(down);
  });
});
