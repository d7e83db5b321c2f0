/** `datasets list|events`: the datasets the metadata database knows, who produces and consumes them, and their events. */
import { dataset, queries, UpdraftError } from '../../core/index.ts';
import { openEnv, printJson, table, out } from '../env.ts';

export async function datasetsList(json: boolean): Promise<void> {
  const { database } = await openEnv();
  try {
    const rows = await queries.datasets.listDatasets(database.db);
    if (json) printJson(rows);
    else if (!rows.length) out('no datasets yet; they appear once a DAG that names one is synced by a scheduler\n');
    else {
      out(`${table(rows.map((r) => ({
        uri: r.uri, producers: r.producingTasks.join(', '), consumers: r.consumingDags.join(', '), events: r.events,
        lastEvent: r.lastEvent ? `${r.lastEvent.timestamp.toISOString()}${r.lastEvent.source ? ` by ${r.lastEvent.source}` : ''}` : '',
      })), ['uri', 'producers', 'consumers', 'events', 'lastEvent'])}\n`);
    }
  } finally {
    await database.close();
  }
}

/** The newest events first (at most 100), each with the runs it triggered. */
export async function datasetsEvents(uri: string, json: boolean): Promise<void> {
  // A malformed URI is refused before the database is opened, with the reason.
  dataset(uri);
  const { database } = await openEnv();
  try {
    const events = await queries.datasets.eventsOfDataset(database.db, uri);
    if (events === null) throw new UpdraftError(`no dataset "${uri}" is known; run \`updraft datasets list\` to see the datasets`);
    if (json) printJson(events);
    else if (!events.length) out(`no events for ${uri} yet\n`);
    else {
      out(`${table(events.map((e) => ({
        id: e.id, timestamp: e.timestamp,
        source: e.sourceTaskId ? `${e.sourceDagId}.${e.sourceTaskId}${e.sourceMapIndex !== null && e.sourceMapIndex >= 0 ? `[${e.sourceMapIndex}]` : ''} (${e.sourceRunId})` : '',
        extra: e.extra, triggered: e.triggeredRuns.join(', '),
      })), ['id', 'timestamp', 'source', 'extra', 'triggered'])}\n`);
    }
  } finally {
    await database.close();
  }
}
