/**
 * Errors raised by core: authoring mistakes, task failures and infrastructure trouble.
 * Every class carries typed context and a message that says what, where and what to do.
 * Deferral is a signal, not an error, and lives outside this hierarchy (see runtime/signals.ts).
 */

export class UpdraftError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A DAG file that cannot be turned into a valid DAG. */
export class DagDefinitionError extends UpdraftError {
  constructor(readonly dagId: string | null, message: string, readonly taskId: string | null = null) {
    super(dagId ? `DAG "${dagId}"${taskId ? `, task "${taskId}"` : ''}: ${message}` : message);
  }
}

export class DagImportError extends UpdraftError {
  constructor(readonly fileloc: string, message: string, options?: { cause?: unknown }) {
    super(`${fileloc}: ${message}`, options);
  }
}

export class UnknownDagError extends UpdraftError {
  constructor(readonly dagId: string, known: string[]) {
    super(`unknown DAG "${dagId}"; known DAGs: ${known.length ? known.join(', ') : '(none; check the DAGs folder and `updraft import-errors`)'}`);
  }
}

export class UnknownTaskError extends UpdraftError {
  constructor(readonly dagId: string, readonly taskId: string) {
    super(`DAG "${dagId}" has no task "${taskId}"; run \`updraft dags list\` to see its tasks`);
  }
}

export class InvalidConfError extends UpdraftError {
  /** zod's issues, each with the path of the conf key it is about. */
  constructor(readonly dagId: string, detail: string, readonly issues: readonly { path: string[]; message: string }[] = []) {
    super(`DAG "${dagId}": run conf is invalid: ${detail}`);
  }
}

export class ConfigError extends UpdraftError {}

export class DatabaseUnreachableError extends UpdraftError {
  constructor(readonly where: string, readonly reason: string, readonly attempts: number) {
    super(`cannot reach database ${where} after ${attempts} attempt(s): ${reason}. Is PostgreSQL running, and is DATABASE_URL right?`);
  }
}

/** A task's own failure. `retryable: false` fails it at once, whatever its retries. */
export class TaskFailure extends UpdraftError {
  readonly retryable: boolean = true;
}

/** Fail without retrying (Airflow's AirflowFailException). */
export class TaskFailedNoRetry extends TaskFailure {
  override readonly retryable = false;
}

/** A branch task chose something it cannot follow; retrying would choose the same. */
export class InvalidBranchError extends TaskFailure {
  override readonly retryable = false;
  constructor(readonly dagId: string, readonly taskId: string, detail: string) {
    super(`branch task "${taskId}" of DAG "${dagId}" ${detail}`);
  }
}

/** End the task as skipped (Airflow's AirflowSkipException). */
export class TaskSkipped extends UpdraftError {}

export class TaskTimeoutError extends TaskFailure {
  constructor(readonly dagId: string, readonly taskId: string, readonly timeoutMs: number) {
    super(`task "${taskId}" of DAG "${dagId}" exceeded its executionTimeout of ${timeoutMs} ms`);
  }
}

export class XComSerializationError extends TaskFailure {
  override readonly retryable = false;
  constructor(readonly dagId: string, readonly taskId: string, readonly at: string, what: string) {
    super(`task "${taskId}" of DAG "${dagId}" produced a value that cannot be stored as JSON: ${what} at ${at}. Use plain objects, arrays, strings, numbers, booleans or null (convert Dates to ISO strings, BigInts to strings; strip NUL characters from strings).`);
  }
}

/** A variable a task asked for is not defined in any source. */
export class VariableNotFoundError extends TaskFailure {
  constructor(readonly key: string, detail?: string) {
    super(detail ? `variable "${key}": ${detail}` : `variable "${key}" is not defined; set it with \`updraft variables set ${key} <value>\` or UPDRAFT_VAR_${key.toUpperCase()}, or pass a default`);
  }
}

/** A worker disappeared while running the task. */
export class ZombieTaskError extends TaskFailure {}

/** A trigger row names a class the registry does not know. */
export class UnknownTriggerError extends TaskFailure {
  override readonly retryable = false;
  constructor(readonly triggerName: string, known: string[]) {
    super(`unknown trigger "${triggerName}"; registered triggers: ${known.join(', ') || '(none)'}. Register the class with registerTrigger() in a module the DAG file imports.`);
  }
}

export class InvalidTriggerKwargsError extends TaskFailure {
  override readonly retryable = false;
  constructor(readonly triggerName: string, detail: string) {
    super(`trigger "${triggerName}" has invalid kwargs: ${detail}`);
  }
}

/** The trigger a task waited on raised, or ended without an event. */
export class TaskDeferralError extends TaskFailure {}

/** The task's deferral timed out (its own timeout, or its executionTimeout across deferrals). */
export class TaskDeferralTimeout extends TaskFailure {}

/** A dataset URI Updraft cannot use: not a string, empty, with whitespace, or without a scheme. */
export class InvalidDatasetUriError extends UpdraftError {
  constructor(readonly uri: unknown, reason: string) {
    // A runaway value is shown by its start: enough to find it, not a screenful.
    const shown = typeof uri === 'string' ? JSON.stringify(uri.length > 120 ? `${uri.slice(0, 120)}…` : uri) : String(uri);
    super(`invalid dataset URI ${shown}: ${reason}; `
      + 'use a URI with a scheme and no whitespace, such as "s3://bucket/orders.parquet" or "file:///data/orders.csv"');
  }
}

/** An any()/all() condition, or a dataset schedule, built from something that is not a dataset. */
export class InvalidDatasetConditionError extends UpdraftError {}

/** A dataset event a task added at run time cannot be recorded. Retrying would add it again. */
export class InvalidDatasetEventError extends TaskFailure {
  override readonly retryable = false;
  constructor(readonly dagId: string, readonly taskId: string, detail: string) {
    super(`task "${taskId}" of DAG "${dagId}": ctx.outletEvents.add(): ${detail}`);
  }
}
