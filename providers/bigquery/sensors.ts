/**
 * BigQueryTableExistenceSensor: waits for a table (or view) to exist. Without `deferrable` it
 * pokes `tables.get` from the worker's event loop; with `deferrable: true` the wait moves to
 * the triggerer (`bigquery.BigQueryTableExistenceTrigger`, on the triggerer's shared client).
 */
import { BaseSensorOperator, SensorTimeout, baseOptions, type Context, type SensorOptions } from 'updraft';
import { GCP_DEFAULT_CONN_ID } from './connection.ts';
import { BigQueryHook } from './hook.ts';
import { BigQueryTableExistenceTrigger } from './triggers.ts';

export interface BigQueryTableExistenceSensorOptions extends SensorOptions {
  connId?: string;
  datasetId: string;
  tableId: string;
  deferrable?: boolean;
}

const OWN_KEYS = ['connId', 'datasetId', 'tableId', 'deferrable'];

export class BigQueryTableExistenceSensor extends BaseSensorOperator {
  static override templateFields = ['datasetId', 'tableId'];

  connId: string;
  datasetId: string;
  tableId: string;
  readonly deferrable: boolean;

  constructor(options: BigQueryTableExistenceSensorOptions) {
    super(baseOptions<BigQueryTableExistenceSensorOptions, SensorOptions>(options, OWN_KEYS));
    this.connId = options.connId ?? GCP_DEFAULT_CONN_ID;
    this.datasetId = options.datasetId;
    this.tableId = options.tableId;
    this.deferrable = options.deferrable ?? false;
    if (!this.datasetId || !this.tableId) throw this.invalid('datasetId and tableId are required');
  }

  async execute(ctx: Context): Promise<{ datasetId: string; tableId: string }> {
    if (this.deferrable) {
      return this.deferTo(new BigQueryTableExistenceTrigger({ connId: this.connId, datasetId: this.datasetId, tableId: this.tableId, pokeIntervalMs: Math.max(100, this.pokeInterval) }));
    }
    const hook = await BigQueryHook.create(ctx, this.connId);
    const deadline = Date.now() + this.timeout;
    for (let poke = 1; ; poke++) {
      if (await hook.tableExists(this.datasetId, this.tableId)) return { datasetId: this.datasetId, tableId: this.tableId };
      if (Date.now() + this.pokeInterval > deadline) {
        const error = new SensorTimeout(`sensor "${this.taskId}" of DAG "${this.dagId}" timed out after ${poke} poke(s): no table ${this.datasetId}.${this.tableId}`);
        if (this.softFail) throw this.skipped('it timed out', error);
        throw error;
      }
      ctx.log.info('no table %s.%s yet (poke %d); next poke in %d ms', this.datasetId, this.tableId, poke, this.pokeInterval);
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => { ctx.signal.removeEventListener('abort', onAbort); resolve(); }, this.pokeInterval);
        const onAbort = () => { clearTimeout(t); reject(ctx.signal.reason); };
        ctx.signal.addEventListener('abort', onAbort, { once: true });
      });
    }
  }

  executeComplete(_ctx: Context, event: { datasetId: string; tableId: string }): { datasetId: string; tableId: string } {
    return { datasetId: event.datasetId, tableId: event.tableId };
  }
}
