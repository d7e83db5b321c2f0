/**
 * Runs one sync task inside a worker thread. The thread imports the task's DAG file itself
 * (modules are cached per file version), so only plain data crosses the boundary: the
 * context data and resolved inputs in; the result, extra XComs, log lines and errors out.
 * XCom pulls travel over a MessagePort.
 */
import type { MessagePort } from 'node:worker_threads';
import { importDagFile } from './dag-bag.ts';
import { buildContext, errorToData, type ErrorData } from './task-context.ts';
import { LogBuffer, installConsoleCapture, taskLogScope, type LogLine } from './task-log.ts';
import { findJsonProblem } from '../model/json-value.ts';
import { XComSerializationError } from '../errors.ts';
import { invokeOperator, deferralRequest, isTaskDeferred, type DeferralFailure, type DeferralRequest } from './invoke.ts';
import type { ContextData } from '../authoring/context.ts';
import type { Dag } from '../authoring/dag.ts';

export interface SyncTaskRequest {
  fileloc: string;
  fileVersion: string;
  context: ContextData;
  inputs: unknown;
  nextMethod: string | null;
  failure: DeferralFailure | null;
  port: MessagePort;
}

interface SyncTaskTrail {
  pushes: [string, unknown][];
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
  const warnings: string[] = [];
  const buffer = new LogBuffer();
  const pending = new Map<number, (v: unknown) => void>();
  let seq = 0;
  req.port.on('message', (m: { type: string; id: number; value: unknown }) => {
    if (m.type === 'xcom') pending.get(m.id)?.(m.value);
  });
  req.port.unref();
  try {
    const key = `${req.fileloc}@${req.fileVersion}`;
    if (!modules.has(key)) modules.set(key, importDagFile(req.fileloc, req.fileVersion));
    const dag = (await modules.get(key)!).find((d) => d.dagId === req.context.dagId);
    const op = dag?.task(req.context.taskId)?.freshInstance();
    if (!op) throw new Error(`task "${req.context.taskId}" of DAG "${req.context.dagId}" not found in ${req.fileloc} inside the worker thread`);
    const context = buildContext(req.context, {
      signal: new AbortController().signal,
      log: buffer.logger(),
      xcomPush: (k, v) => pushes.push([k, v]),
      xcomPull: (taskId, k, mapIndex) => new Promise((resolve) => {
        const id = ++seq;
        pending.set(id, resolve);
        req.port.postMessage({ type: 'xcomPull', id, taskId, key: k, mapIndex });
      }),
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
    return { ok: true, result, pushes, warnings, logs: buffer.drain() };
  } catch (err) {
    if (isTaskDeferred(err)) {
      try {
        return { ok: false, deferred: deferralRequest(err), pushes, warnings, logs: buffer.drain() };
      } catch (invalid) {
        return { ok: false, error: errorToData(invalid), pushes, warnings, logs: buffer.drain() };
      }
    }
    return { ok: false, error: errorToData(err), pushes, warnings, logs: buffer.drain() };
  } finally {
    req.port.close();
  }
}
