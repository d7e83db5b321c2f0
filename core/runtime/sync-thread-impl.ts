/**
 * Runs one sync task inside a worker thread. The thread imports the task's DAG file itself
 * (modules are cached per file version), so only plain data crosses the boundary: the
 * context data and resolved inputs in; the result, extra XComs, log lines and errors out.
 * XCom pulls travel over a MessagePort.
 */
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { masker } from '../secrets/masker.ts';
import type { Connection } from '../connections/connection.ts';
import { importDagFile } from './dag-bag.ts';
import { buildContext, errorToData, type ErrorData } from './task-context.ts';
import { LogBuffer, installConsoleCapture, taskLogScope, type LogLine } from './task-log.ts';
import { findJsonProblem } from '../model/json-value.ts';
import { XComSerializationError } from '../errors.ts';
import { invokeOperator, deferralRequest, isTaskDeferred, type DeferralFailure, type DeferralRequest } from './invoke.ts';
import type { ContextData } from '../authoring/context.ts';
import type { Dag } from '../authoring/dag.ts';
import type { OutletEventData } from '../authoring/dataset.ts';

export interface SyncTaskRequest {
  fileloc: string;
  fileVersion: string;
  context: ContextData;
  inputs: unknown;
  nextMethod: string | null;
  failure: DeferralFailure | null;
  rendered: Record<string, unknown> | null;
  port: MessagePort;
  /** Replies to lookups the thread blocks on (connectionSync, variableSync). */
  syncPort: MessagePort;
}

interface LookupReply {
  type: 'lookup';
  id: number;
  value?: unknown;
  error?: { name: string; message: string };
  secrets: string[];
}

/** How long a blocked lookup waits for the worker's answer before the task fails. */
const SYNC_LOOKUP_TIMEOUT_MS = 60_000;

function lookupResult(reply: LookupReply): unknown {
  masker.addAll(reply.secrets);
  if (reply.error) throw Object.assign(new Error(reply.error.message), { name: reply.error.name });
  return reply.value;
}

interface SyncTaskTrail {
  pushes: [string, unknown][];
  outletEvents: OutletEventData[];
  warnings: string[];
  logs: LogLine[];
}

export type SyncTaskResponse = SyncTaskTrail & (
  | { ok: true; result: unknown }
  | { ok: false; error: ErrorData }
  | { ok: false; deferred: DeferralRequest });

const modules = new Map<string, Promise<Dag[]>>();

export async function runSyncTask(req: SyncTaskRequest): Promise<SyncTaskResponse> {
  installConsoleCapture();
  const pushes: [string, unknown][] = [];
  const outletEvents: OutletEventData[] = [];
  const warnings: string[] = [];
  const buffer = new LogBuffer();
  const pending = new Map<number, (v: unknown) => void>();
  let seq = 0;
  const lookups = new Map<number, (m: LookupReply) => void>();
  req.port.on('message', (m: { type: string; id: number; value: unknown }) => {
    if (m.type === 'xcom') pending.get(m.id)?.(m.value);
    if (m.type === 'lookup') lookups.get(m.id)?.(m as unknown as LookupReply);
  });
  const lookup = (type: 'connection' | 'variable', name: string) => new Promise<unknown>((resolve, reject) => {
    const id = ++seq;
    lookups.set(id, (reply) => {
      lookups.delete(id);
      try {
        resolve(lookupResult(reply));
      } catch (err) {
        reject(err);
      }
    });
    req.port.postMessage({ type, id, name });
  });
  const lookupSync = (type: 'connection' | 'variable', name: string): unknown => {
    const flag = new SharedArrayBuffer(4);
    req.port.postMessage({ type, id: ++seq, name, flag });
    if (Atomics.wait(new Int32Array(flag), 0, 0, SYNC_LOOKUP_TIMEOUT_MS) === 'timed-out') {
      throw new Error(`${type} "${name}": no answer from the worker in ${SYNC_LOOKUP_TIMEOUT_MS / 1000} s`);
    }
    return lookupResult(receiveMessageOnPort(req.syncPort)!.message as LookupReply);
  };
  req.port.unref();
  try {
    const key = `${req.fileloc}@${req.fileVersion}`;
    if (!modules.has(key)) modules.set(key, importDagFile(req.fileloc, req.fileVersion));
    const dag = (await modules.get(key)!).find((d) => d.dagId === req.context.dagId);
    const op = dag?.task(req.context.taskId)?.freshInstance();
    if (!op) throw new Error(`task "${req.context.taskId}" of DAG "${req.context.dagId}" not found in ${req.fileloc} inside the worker thread`);
    if (req.rendered) Object.assign(op, req.rendered);
    const context = buildContext(req.context, {
      signal: new AbortController().signal,
      log: buffer.logger(),
      xcomPush: (k, v) => pushes.push([k, v]),
      outletEvent: (e) => outletEvents.push(e),
      xcomPull: (taskId, k, mapIndex) => new Promise((resolve) => {
        const id = ++seq;
        pending.set(id, resolve);
        req.port.postMessage({ type: 'xcomPull', id, taskId, key: k, mapIndex });
      }),
      connection: async (connId) => await lookup('connection', connId) as Connection,
      variable: async (key) => await lookup('variable', key) as string | undefined,
      connectionSync: (connId) => lookupSync('connection', connId) as Connection,
      variableSync: (key) => lookupSync('variable', key) as string | undefined,
    });
    let result: unknown = await taskLogScope.run(buffer, async () => {
      const r = invokeOperator(op, context, req.inputs, req.nextMethod, req.failure);
      if (r && typeof (r as PromiseLike<unknown>).then === 'function') {
        warnings.push(`task "${op.taskId}" returned a promise from a sync callable; it ran in a worker thread. Declare it async (or mode: 'async') to run on the worker's event loop.`);
        return await r;
      }
      return r;
    });
    const problem = findJsonProblem(result);
    if (problem) {
      result = undefined;
      throw new XComSerializationError(op.dagId, op.taskId, problem.at, problem.what);
    }
    return { ok: true, result, pushes, outletEvents, warnings, logs: buffer.drain() };
  } catch (err) {
    if (isTaskDeferred(err)) {
      try {
        return { ok: false, deferred: deferralRequest(err), pushes, outletEvents, warnings, logs: buffer.drain() };
      } catch (invalid) {
        return { ok: false, error: errorToData(invalid), pushes, outletEvents, warnings, logs: buffer.drain() };
      }
    }
    return { ok: false, error: errorToData(err), pushes, outletEvents, warnings, logs: buffer.drain() };
  } finally {
    req.port.close();
    req.syncPort.close();
  }
}
