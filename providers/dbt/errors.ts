/** The dbt provider's errors. Each names the project file and, where known, the line. */
import { UpdraftError } from 'updraft';

/** A project that cannot be loaded or rendered: bad YAML or Jinja, an unknown ref, a cycle. */
export class DbtProjectError extends UpdraftError {
  readonly retryable = false;
  constructor(readonly file: string, readonly line: number | null, detail: string, options?: { cause?: unknown }) {
    super(`dbt project: ${file}${line ? `:${line}` : ''}: ${detail}`, options);
  }
}

/** `exceptions.raise_compiler_error(...)` in a model or macro. */
export class DbtCompilerError extends UpdraftError {
  readonly retryable = false;
}

/** A dbt test that found rows (severity error). */
export class DbtTestFailure extends UpdraftError {
  readonly retryable = false;
  constructor(readonly test: string, readonly failures: number, rows: unknown[]) {
    super(`dbt test ${test} failed: ${failures} row${failures === 1 ? '' : 's'} returned; first rows: ${JSON.stringify(rows)}`);
  }
}
