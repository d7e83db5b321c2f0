/**
 * `updraft` command dispatch. Every failure a user can cause ends as one readable line on
 * stderr and a non-zero exit, never a stack trace (set UPDRAFT_DEBUG=1 to see one).
 */
import { parseArgs } from 'node:util';
import { UpdraftError, parseDuration } from '../core/index.ts';
import { UsageError } from './errors.ts';
import * as services from './commands/services.ts';
import * as dags from './commands/dags.ts';
import * as triggers from './commands/triggers.ts';
import * as pools from './commands/pools.ts';
import * as conns from './commands/connections.ts';
import * as datasets from './commands/datasets.ts';
import { tasksRender } from './commands/render.ts';
import * as inspect from './commands/inspect.ts';
import { dagsBackfill } from './commands/backfill.ts';
import { dbClean } from './commands/db-clean.ts';
import { apiServer, usersHashPassword } from './commands/api-server.ts';
import { TiAction } from '../core/index.ts';

const USAGE = `usage: updraft <command>

  standalone                         migrate, then run scheduler, worker and triggerer in one process
  scheduler [--metrics-port P]       run a scheduler; --metrics-port (scheduler, worker, triggerer):
                                     Prometheus metrics at http://127.0.0.1:P/metrics
  worker [--slots N] [--grace 60s] [--prefetch N] [--metrics-port P]
                                     run a worker; on SIGTERM, running tasks get the grace period
                                     to finish, then go back to scheduled in the same try;
                                     --prefetch: TIs claimed beyond the slots (default: while
                                     tasks are short, 2.5 result batches, slots/4 to slots;
                                     else none; 0 turns it off)
  triggerer [--capacity N] [--metrics-port P]
                                     run a triggerer (all triggers on one event loop)
  api-server [--port 8080] [--host 127.0.0.1]
                                     the web UI and REST API (/api/v1, OpenAPI at /api/v1/openapi.json)
  users hash-password [--password PW]
                                     the scrypt hash for a user's "password" or a token's "hash" in
                                     the config file's "api" section (reads stdin without --password)
  db migrate                         create or upgrade the metadata database
  db clean --before D [--table T]... [--dry-run] [--yes] [--json]
                                     delete finished runs' TIs, TI history, logs and XComs, dataset
                                     events and orphan triggers older than D, in short batches;
                                     tables: logs, task_instance_history, xcom, task_instances,
                                     dataset_events, triggers (default all); needs --yes to delete
  bigquery-emulator [--port 9050] [--project P] [--data-dir D] [--job-duration MS]
                                     a local BigQuery-compatible server (REST v2, SQL in DuckDB)
                                     to develop and test DAGs offline; not a BigQuery replacement
  dags list [--json]                 DAGs found in the DAGs folder, paused or not
  dags pause|unpause <dagId>         a paused DAG creates no scheduled runs and starts no queued ones
                                     (running tasks finish); isPausedUponCreation starts a DAG paused
  dags show <dagId> [--dot] [--json] the task graph as text, or Graphviz with --dot
  dags backfill <dagId> --start D --end D [--reprocess-behavior none|failed|completed]
                [--max-active-runs N] [--run-backwards] [--dry-run] [--json]
                                     runs (type backfill) for the intervals whose logical date is in
                                     [start, end]; none (default) skips intervals that have a run,
                                     failed re-runs failed ones too, completed re-runs every finished
                                     one; follows the runs until done (a scheduler and worker run them)
  dags trigger <dagId> [--conf JSON] [--run-id ID] [--priority N] [--tag key=value]...
  dags test <dagId> [--conf JSON] [--json]
                                     one run, in-process, to completion; --json: every TI's state,
                                     try, start, end, duration, error and return value (cut past 2,000 chars)
  tasks test <dagId> <taskId>        run one task, ignoring its dependencies
  tasks logs <runId> <taskId> [--try N] [--json]
                                     from the database, and from UPDRAFT_LOG_FOLDER when set
  tasks states-for-dag-run <dagId> <runId> [--json]
  xcom get <dagId> <runId> <taskId> [--key K] [--map-index N] [--json]
                                     one XCom's value (default key return_value)
  xcom list <dagId> <runId> [--task T] [--json]
  tasks clear|mark-failed|mark-success <dagId> <runId> <taskId>
                                     change a TI by hand (a deferred one has its trigger killed)
  triggers list [--json]             triggers, their triggerer, age and waiting TIs
  rotate-key                         re-seal trigger kwargs, connections and variables with the
                                     current key (old keys in UPDRAFT_SECRET_KEY_PREVIOUS, comma-separated)
  connections add <id> (--uri URI | --json JSON | --type T [--host H] [--port P] [--login L]
                  [--password PW] [--schema S] [--extra JSON]) [--description D] [--replace]
  connections get <id> [--uri] [--show-secrets] | list | delete <id> | test <id>
  connections export <file> | import <file> [--replace]
  variables get <key> [--default V] | set <key> <value> [--description D] | list | delete <key>
  variables export <file> | import <file>
  tasks render <dagId> <taskId> [--logical-date D] [--conf JSON] [--run-id ID]
                                     a task's templated fields, rendered, without running it
                                     (--run-id: for that run, with its XComs)
  runs list [--dag-id ID] [--json]
  runs show <runId> [--dag-id ID] [--json]
  import-errors [--json]
  pools set <name> <slots> [--include-deferred] [--description TEXT]
  pools list [--json] | pools delete <name>
  datasets list [--json]             datasets: the tasks producing them, the DAGs scheduled on them,
                                     their last event
  datasets events <uri> [--json]     a dataset's newest events and the runs each one triggered

environment: DATABASE_URL (PostgreSQL; default is embedded PGlite in UPDRAFT_DATA_DIR=.updraft),
UPDRAFT_DAGS_FOLDER (default dags), UPDRAFT_WORKER_SLOTS, UPDRAFT_ZOMBIE_THRESHOLD, UPDRAFT_HEARTBEAT,
UPDRAFT_TRIGGERER_HEALTH_THRESHOLD, UPDRAFT_SECRET_KEY (seals connections, variables and trigger kwargs at rest),
UPDRAFT_CONN_<ID> (a connection URI or JSON), UPDRAFT_VAR_<KEY>, UPDRAFT_SECRETS_FILE, UPDRAFT_XCOM_PATH,
UPDRAFT_LOG_MAX_BYTES_PER_TRY (task log bytes kept per try, default 4 MiB), UPDRAFT_LOG_FOLDER (task logs to files).
Every command that lists or shows takes --json.`;

function priorityArg(v: string | undefined): number {
  if (v === undefined) return 0;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new UsageError(`--priority must be an integer, got "${v}"`);
  return n;
}

function mapIndexArg(v: string | undefined): number {
  if (v === undefined) return -1;
  const n = Number(v);
  if (!Number.isInteger(n) || n < -1) throw new UsageError(`--map-index must be an integer ≥ 0 (or -1 for an unmapped task), got "${v}"`);
  return n;
}

function portArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`--port must be a port number (0 picks a free one), got "${v}"`);
  return n;
}

function durationArg(v: string, flag: string): number {
  const ms = parseDuration(v);
  if (ms === null) throw new UsageError(`${flag} must be a duration such as 60s, 5m or 1500ms, got "${v}"`);
  return ms;
}

/** `connections add --json {...}` carries a document, while --json elsewhere asks for JSON output. */
function separateDocument(argv: string[]): string[] {
  const i = argv.indexOf('--json');
  if (argv[0] === 'connections' && argv[1] === 'add' && i >= 0 && argv[i + 1]?.trim().startsWith('{')) {
    return [...argv.slice(0, i), '--conn-json', ...argv.slice(i + 1)];
  }
  // `connections get --uri` is a switch; `connections add --uri URI` carries a value.
  if (argv[0] === 'connections' && argv[1] === 'get') return argv.map((a) => (a === '--uri' ? '--as-uri' : a));
  return argv;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: separateDocument(argv),
    allowPositionals: true,
    options: {
      json: { type: 'boolean', default: false },
      conf: { type: 'string' },
      'run-id': { type: 'string' },
      priority: { type: 'string' },
      tag: { type: 'string', multiple: true },
      'dag-id': { type: 'string' },
      slots: { type: 'string' },
      prefetch: { type: 'string' },
      project: { type: 'string' },
      'data-dir': { type: 'string' },
      'job-duration': { type: 'string' },
      grace: { type: 'string', default: '60s' },
      try: { type: 'string' },
      capacity: { type: 'string' },
      'include-deferred': { type: 'boolean', default: false },
      description: { type: 'string' },
      'metrics-port': { type: 'string' },
      uri: { type: 'string' },
      'as-uri': { type: 'boolean', default: false },
      'conn-json': { type: 'string' },
      type: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      login: { type: 'string' },
      password: { type: 'string' },
      schema: { type: 'string' },
      extra: { type: 'string' },
      replace: { type: 'boolean', default: false },
      'show-secrets': { type: 'boolean', default: false },
      default: { type: 'string' },
      'logical-date': { type: 'string' },
      dot: { type: 'boolean', default: false },
      start: { type: 'string' },
      end: { type: 'string' },
      'reprocess-behavior': { type: 'string', default: 'none' },
      'max-active-runs': { type: 'string' },
      'run-backwards': { type: 'boolean', default: false },
      'dry-run': { type: 'boolean', default: false },
      before: { type: 'string' },
      table: { type: 'string', multiple: true },
      yes: { type: 'boolean', default: false },
      key: { type: 'string', default: 'return_value' },
      'map-index': { type: 'string' },
      task: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [cmd, sub, a, b] = positionals;
  const need = (v: string | undefined, what: string) => {
    if (!v) throw new UsageError(`missing ${what}; run \`updraft --help\``);
    return v;
  };
  const int = (v: string | undefined, flag: string) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer, got "${v}"`);
    return n;
  };
  if (values.help || !cmd) {
    process.stdout.write(`${USAGE}\n`);
    return cmd || values.help ? 0 : 2;
  }
  const key = ['users', 'db', 'dags', 'tasks', 'runs', 'triggers', 'pools', 'connections', 'variables', 'datasets', 'xcom'].includes(cmd) ? `${cmd} ${sub ?? ''}`.trim() : cmd;
  switch (key) {
    case 'standalone': await services.standalone(); return 0;
    case 'bigquery-emulator': await services.bigqueryEmulator({
      port: values.port === undefined ? 9050 : int(values.port, '--port')!, project: values.project, dataDir: values['data-dir'],
      jobDurationMs: values['job-duration'] === undefined ? undefined : values['job-duration'] === '0' ? 0 : int(values['job-duration'], '--job-duration'),
    }); return 0;
    case 'api-server': await apiServer(values.port === undefined ? undefined : portArg(values.port), values.host); return 0;
    case 'users hash-password': await usersHashPassword(values.password); return 0;
    case 'scheduler': await services.scheduler(int(values['metrics-port'], '--metrics-port')); return 0;
    case 'worker': await services.worker(int(values.slots, '--slots'), durationArg(values.grace, '--grace'), values.prefetch === '0' ? 0 : int(values.prefetch, '--prefetch'),
      int(values['metrics-port'], '--metrics-port')); return 0;
    case 'triggerer': await triggers.triggerer(int(values.capacity, '--capacity'), int(values['metrics-port'], '--metrics-port')); return 0;
    case 'triggers list': await triggers.triggersList(values.json); return 0;
    case 'triggers rotate-key':
    case 'rotate-key': await triggers.rotateKey(values.json); return 0;
    case 'connections add': await conns.connectionsAdd(need(a, '<id>'), {
      uri: values.uri, doc: values['conn-json'], type: values.type, host: values.host, port: values.port, login: values.login,
      password: values.password, schema: values.schema, extra: values.extra, description: values.description,
    }, values.replace, values.json); return 0;
    case 'connections get': await conns.connectionsGet(need(a, '<id>'), values['as-uri'], values['show-secrets'], values.json); return 0;
    case 'connections list': await conns.connectionsList(values.json); return 0;
    case 'connections delete': await conns.connectionsDelete(need(a, '<id>'), values.json); return 0;
    case 'connections export': await conns.connectionsExport(need(a, '<file>'), values.json); return 0;
    case 'connections import': await conns.connectionsImport(need(a, '<file>'), values.replace, values.json); return 0;
    case 'connections test': return conns.connectionsTest(need(a, '<id>'), values.json);
    case 'variables get': return conns.variablesGet(need(a, '<key>'), values.default, values.json);
    case 'variables set': await conns.variablesSet(need(a, '<key>'), need(b, '<value>'), values.description, values.json); return 0;
    case 'variables list': await conns.variablesList(values.json); return 0;
    case 'variables delete': await conns.variablesDelete(need(a, '<key>'), values.json); return 0;
    case 'variables export': await conns.variablesExport(need(a, '<file>'), values.json); return 0;
    case 'variables import': await conns.variablesImport(need(a, '<file>'), values.json); return 0;
    case 'tasks render': await tasksRender(need(a, '<dagId>'), need(b, '<taskId>'), values['logical-date'], values.conf, values.json, values['run-id']); return 0;
    case 'tasks clear': await triggers.changeTask(TiAction.CLEAR, need(a, '<dagId>'), need(b, '<runId>'), need(positionals[4], '<taskId>')); return 0;
    case 'tasks mark-failed': await triggers.changeTask(TiAction.MARK_FAILED, need(a, '<dagId>'), need(b, '<runId>'), need(positionals[4], '<taskId>')); return 0;
    case 'tasks mark-success': await triggers.changeTask(TiAction.MARK_SUCCESS, need(a, '<dagId>'), need(b, '<runId>'), need(positionals[4], '<taskId>')); return 0;
    case 'db migrate': await dags.dbMigrate(); return 0;
    case 'db clean': await dbClean(values.before, values.table ?? [], values['dry-run'], values.yes, values.json); return 0;
    case 'dags list': await dags.dagsList(values.json); return 0;
    case 'dags pause': await inspect.dagsSetPaused(need(a, '<dagId>'), true, values.json); return 0;
    case 'dags unpause': await inspect.dagsSetPaused(need(a, '<dagId>'), false, values.json); return 0;
    case 'dags backfill': return dagsBackfill(need(a, '<dagId>'), {
      start: values.start, end: values.end, reprocess: values['reprocess-behavior'], maxActiveRuns: int(values['max-active-runs'], '--max-active-runs') ?? 10,
      runBackwards: values['run-backwards'], dryRun: values['dry-run'], json: values.json,
    });
    case 'dags show': await inspect.dagsShow(need(a, '<dagId>'), values.dot, values.json); return 0;
    case 'tasks states-for-dag-run': await inspect.statesForDagRun(need(a, '<dagId>'), need(b, '<runId>'), values.json); return 0;
    case 'xcom get': await inspect.xcomGet(need(a, '<dagId>'), need(b, '<runId>'), need(positionals[4], '<taskId>'), values.key, mapIndexArg(values['map-index']), values.json); return 0;
    case 'xcom list': await inspect.xcomList(need(a, '<dagId>'), need(b, '<runId>'), values.task, values.json); return 0;
    case 'dags trigger': await dags.dagsTrigger(need(a, '<dagId>'), values.conf, values['run-id'], priorityArg(values.priority), values.tag ?? []); return 0;
    case 'dags test': return dags.dagsTest(need(a, '<dagId>'), values.conf, values.json);
    case 'tasks test': return dags.dagsTest(need(a, '<dagId>'), values.conf, values.json, need(b, '<taskId>'));
    case 'tasks logs': await dags.tasksLogs(need(a, '<runId>'), need(b, '<taskId>'), int(values.try, '--try'), values.json); return 0;
    case 'runs list': await dags.runsList(values['dag-id'], values.json); return 0;
    case 'runs show': await dags.runsShow(need(a, '<runId>'), values['dag-id'], values.json); return 0;
    case 'pools set': await pools.poolsSet(need(a, '<name>'), need(b, '<slots>'), values['include-deferred'], values.description); return 0;
    case 'pools list': await pools.poolsList(values.json); return 0;
    case 'pools delete': await pools.poolsDelete(need(a, '<name>')); return 0;
    case 'import-errors': await dags.importErrors(values.json); return 0;
    case 'datasets list': await datasets.datasetsList(values.json); return 0;
    case 'datasets events': await datasets.datasetsEvents(need(a, '<uri>'), values.json); return 0;
    default: throw new UsageError(`unknown command "${positionals.join(' ')}"; run \`updraft --help\``);
  }
}

try {
  const code = await main(process.argv.slice(2));
  process.exit(code);
} catch (err) {
  if (process.env.UPDRAFT_DEBUG) console.error(err);
  const known = err instanceof UpdraftError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
  process.stderr.write(`updraft: ${known ? (err as Error).message : `unexpected error: ${(err as Error).message} (set UPDRAFT_DEBUG=1 for details)`}\n`);
  process.exit(1);
}
