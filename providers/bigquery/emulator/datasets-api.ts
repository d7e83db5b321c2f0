/**
 * The datasets, tables and tabledata routes: each dataset is a DuckDB schema (so one made by
 * `CREATE SCHEMA` is here too), its location and labels kept beside it by the engine.
 */
import type { Engine, FieldSchema } from './engine.ts';
import { HttpError, timestampFormat } from './http.ts';
import { restRows } from './values.ts';

/** The handler for `/projects/{p}/datasets/…`, answering [route name, payload]. */
export function datasetsApi(engine: Engine, location: string) {
  return async function datasets(method: string, project: string, id: string | undefined, sub: string | undefined, subId: string | undefined, tail: string | undefined, q: URLSearchParams, body: () => Promise<Buffer>): Promise<[string, unknown]> {
    const datasetRef = (d: string) => ({ projectId: project, datasetId: d });
    const datasetResource = (d: string) => {
      const meta = engine.datasetMeta.get(d);
      return {
        kind: 'bigquery#dataset', id: `${project}:${d}`, datasetReference: datasetRef(d),
        location: meta?.location ?? location, labels: meta?.labels ?? {}, creationTime: String(meta?.creationTime ?? 0),
      };
    };
    const requireDataset = async (d: string) => {
      if (!(await engine.datasets()).includes(d)) throw new HttpError(404, `Not found: Dataset ${project}:${d}`, 'notFound');
    };
    if (!id) {
      if (method === 'GET') return ['datasets.list', { kind: 'bigquery#datasetList', datasets: (await engine.datasets()).map((d) => ({ ...datasetResource(d), kind: undefined })) }];
      if (method === 'POST') {
        const r = JSON.parse((await body()).toString()) as { datasetReference?: { datasetId?: string }; location?: string; labels?: Record<string, string> };
        const d = r.datasetReference?.datasetId;
        if (!d) throw new HttpError(400, 'a dataset needs datasetReference.datasetId', 'invalid');
        if ((await engine.datasets()).includes(d)) throw new HttpError(409, `Already Exists: Dataset ${project}:${d}`, 'duplicate');
        await engine.createDataset(d, { location: r.location ?? location, labels: r.labels ?? {} });
        return ['datasets.insert', datasetResource(d)];
      }
    }
    const dataset = decodeURIComponent(id!);
    if (!sub) {
      await requireDataset(dataset);
      if (method === 'GET') return ['datasets.get', datasetResource(dataset)];
      if (method === 'DELETE') {
        const contents = q.get('deleteContents') === 'true';
        if (!contents && (await engine.tables(dataset)).length) throw new HttpError(400, `Dataset ${project}:${dataset} is still in use; pass deleteContents`, 'resourceInUse');
        await engine.dropDataset(dataset, contents);
        return ['datasets.delete', undefined];
      }
    }
    if (sub === 'tables') {
      await requireDataset(dataset);
      const tableResource = async (t: string) => {
        const info = await engine.table(dataset, t);
        if (!info) throw new HttpError(404, `Not found: Table ${project}:${dataset}.${t}`, 'notFound');
        return {
          kind: 'bigquery#table', id: `${project}:${dataset}.${t}`, tableReference: { projectId: project, datasetId: dataset, tableId: t },
          type: info.type, schema: { fields: info.schema }, numRows: String(info.numRows), location,
        };
      };
      if (!subId) {
        if (method === 'GET') {
          const tables = await engine.tables(dataset);
          return ['tables.list', { kind: 'bigquery#tableList', totalItems: tables.length, tables: tables.map((t) => ({ kind: 'bigquery#table', id: `${project}:${dataset}.${t.tableId}`, tableReference: { projectId: project, datasetId: dataset, tableId: t.tableId }, type: t.type })) }];
        }
        if (method === 'POST') {
          const r = JSON.parse((await body()).toString()) as { tableReference?: { tableId?: string }; schema?: { fields?: FieldSchema[] }; view?: { query?: string } };
          const t = r.tableReference?.tableId;
          if (!t) throw new HttpError(400, 'a table needs tableReference.tableId', 'invalid');
          if (await engine.table(dataset, t)) throw new HttpError(409, `Already Exists: Table ${project}:${dataset}.${t}`, 'duplicate');
          try {
            await engine.createTable(dataset, t, r.schema?.fields ?? [], r.view?.query);
          } catch (err) {
            throw new HttpError(400, (err as Error).message.split('\n')[0], 'invalid');
          }
          return ['tables.insert', await tableResource(t)];
        }
      }
      const table = decodeURIComponent(subId!);
      if (!tail) {
        if (method === 'GET') return ['tables.get', await tableResource(table)];
        if (method === 'DELETE') {
          await tableResource(table);
          await engine.dropTable(dataset, table);
          return ['tables.delete', undefined];
        }
      }
      if (tail === 'data' && method === 'GET') {
        await tableResource(table);
        const start = Number(q.get('pageToken') ?? q.get('startIndex') ?? 0);
        const max = Number(q.get('maxResults') ?? 10_000);
        const { rows, total, schema } = await engine.rows(dataset, table, start, max);
        const out: Record<string, unknown> = { kind: 'bigquery#tableDataList', totalRows: String(total), rows: restRows(rows, schema, timestampFormat(q)) };
        if (start + rows.length < total) out.pageToken = String(start + rows.length);
        return ['tabledata.list', out];
      }
      if (tail === 'insertAll' && method === 'POST') {
        await tableResource(table);
        const r = JSON.parse((await body()).toString()) as { rows?: { json: Record<string, unknown> }[] };
        try {
          await engine.insertJson(dataset, table, (r.rows ?? []).map((x) => x.json));
        } catch (err) {
          return ['tabledata.insertAll', { kind: 'bigquery#tableDataInsertAllResponse', insertErrors: [{ index: 0, errors: [{ reason: 'invalid', message: (err as Error).message.split('\n')[0] }] }] }];
        }
        return ['tabledata.insertAll', { kind: 'bigquery#tableDataInsertAllResponse' }];
      }
    }
    throw new HttpError(404, `no route ${method} datasets/${[id, sub, subId, tail].filter(Boolean).join('/')}`, 'notFound');
  };
}
