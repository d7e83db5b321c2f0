/**
 * The HTTP provider both ways, against Updraft's own health endpoint (`standalone` serves
 * GET /health on 127.0.0.1:8080; `npm start` points the `updraft_api` connection at it):
 * - `wait_triggerer_healthy`: a deferrable HttpSensor; the triggerer polls until the JSON path
 *   `triggerer.status` equals "healthy", holding no worker slot meanwhile;
 * - `health_async`: an async HttpOperator; the request runs on the worker's event loop;
 * - `health_deferred`: a deferrable HttpOperator; the triggerer makes the request and the task
 *   resumes once with the response, as JSON.
 * Importing this file does no I/O: the connection is looked up when a task runs.
 */
import { dag } from 'updraft';
import { HttpOperator, HttpSensor, type HttpResponse } from 'updraft/providers/http';

const statuses = (r: unknown) => {
  const body = (r as HttpResponse).body as Record<string, { status: string }>;
  return Object.fromEntries(Object.entries(body).map(([k, v]) => [k, v.status]));
};

export default dag({ dagId: 'http_health', schedule: '@hourly', startDate: '2026-01-01T00:00:00Z', tags: ['example', 'http'] }, () => {
  const ready = new HttpSensor({
    taskId: 'wait_triggerer_healthy', connId: 'updraft_api', endpoint: '/health', deferrable: true,
    check: { jsonPath: 'triggerer.status', equals: 'healthy' }, pokeInterval: '5s', timeout: '2m',
  });
  const viaWorker = new HttpOperator({ taskId: 'health_async', connId: 'updraft_api', endpoint: '/health', responseFilter: statuses, logResponse: true });
  const viaTriggerer = new HttpOperator({ taskId: 'health_deferred', connId: 'updraft_api', endpoint: '/health', deferrable: true, responseFilter: statuses });
  ready.then([viaWorker, viaTriggerer]);
});
