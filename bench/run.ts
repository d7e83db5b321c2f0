/** `npm run bench -- <name> [--json]`: runs one benchmark; the last stdout line is its JSON. */
import { fanoutBench } from './fanout.ts';
import { schedulerBench } from './scheduler.ts';
import { triggererBench } from './triggerer.ts';
import { reliabilityBench } from './reliability.ts';
import { httpBench } from './http.ts';
import { sftpBench } from './sftp.ts';
import { bigqueryBench } from './bigquery.ts';
import { dbtBench } from './dbt.ts';
import { dbcleanBench } from './dbclean.ts';
import { uiBench } from './ui.ts';

const benches: Record<string, (json: boolean) => Promise<Record<string, unknown>>> = {
  scheduler: schedulerBench,
  triggerer: triggererBench,
  fanout: fanoutBench,
  reliability: reliabilityBench,
  http: httpBench,
  sftp: sftpBench,
  bigquery: bigqueryBench,
  dbt: dbtBench,
  dbclean: dbcleanBench,
  ui: uiBench,
};

const [name, ...rest] = process.argv.slice(2);
const json = rest.includes('--json');
const bench = name ? benches[name] : undefined;
if (!bench) {
  process.stderr.write(`usage: npm run bench -- <${Object.keys(benches).join('|')}> [--json]\n`);
  process.exit(2);
}
try {
  const result = await bench(json);
  if (!json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
} catch (err) {
  process.stderr.write(`bench ${name} failed: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
}
