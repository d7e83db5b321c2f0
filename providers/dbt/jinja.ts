/**
 * dbt's Jinja on nunjucks. nunjucks renders most of dbt's templates as Jinja does; this module
 * adds what it lacks:
 * - the `{% do expr %}` tag (a parse error in plain nunjucks, even in a macro never called);
 * - `return(value)` inside macros: the macro's call then yields the value instead of its text.
 *   nunjucks builds every macro through `runtime.makeMacro`, so a wrapper there keeps a slot per
 *   call; the first `return()` fills it (later output is discarded anyway, as in Jinja's exit);
 * - Jinja's Python-style methods (`list.append`, `dict.items`, `True`, `None`), from nunjucks's
 *   own Jinja compatibility layer.
 * Every name a template looks up (`ref`, `this`, `config`, the project's macros…) comes through
 * the environment's globals from the render in progress, so macros compiled once see the model
 * that is rendering now.
 */
import nunjucks from 'nunjucks';
import { DbtProjectError } from './errors.ts';

const NO_RETURN = Symbol('no return');
const returnSlots: unknown[] = [];
let installed = false;

function install(): void {
  if (installed) return;
  installed = true;
  nunjucks.installJinjaCompat();
  const runtime = nunjucks.runtime as unknown as { makeMacro: (a: string[], k: string[], f: (...args: unknown[]) => unknown) => unknown };
  const makeMacro = runtime.makeMacro;
  runtime.makeMacro = (argNames, kwargNames, func) => makeMacro(argNames, kwargNames, function macro(this: unknown, ...args: unknown[]) {
    returnSlots.push(NO_RETURN);
    try {
      const out = func.apply(this, args);
      const value = returnSlots[returnSlots.length - 1];
      return value === NO_RETURN ? out : value;
    } finally {
      returnSlots.pop();
    }
  });
}

/** dbt's `return()`: valid inside a macro only. */
function returnValue(value: unknown): string {
  if (!returnSlots.length) throw new Error('return() is only valid inside a macro');
  if (returnSlots[returnSlots.length - 1] === NO_RETURN) returnSlots[returnSlots.length - 1] = value;
  return '';
}

type Parser = { nextToken(): { value: string }; parseSignature(tolerant: null, noParens: boolean): unknown; advanceAfterBlockEnd(name: string): void };
type Nodes = { CallExtension: new (ext: object, method: string, args: unknown) => unknown };

/** `{% do expr %}`: evaluate for its side effects, print nothing. */
class DoExtension {
  readonly tags = ['do'];
  parse(parser: Parser, nodes: Nodes): unknown {
    const tok = parser.nextToken();
    const args = parser.parseSignature(null, true);
    parser.advanceAfterBlockEnd(tok.value);
    return new nodes.CallExtension(this, 'run', args);
  }
  run(): string {
    return '';
  }
}

/** Where a template is, for errors: its project-relative path. */
export interface TemplateSource {
  path: string;
  source: string;
}

/** `(path) [Line 3, Column 5]` in nunjucks's messages; run-time positions are 0-based. */
function locate(error: unknown): { line: number | null; message: string } {
  const err = error as { message?: string; lineno?: number; cause?: unknown };
  const message = String(err.message ?? error);
  const m = /\[Line (\d+), Column \d+\]/.exec(message);
  const line = m ? Number(m[1]) + (err.cause ? 1 : 0) : typeof err.lineno === 'number' ? err.lineno + 1 : null;
  // An error thrown by a function the template called: its own message.
  if (err.cause instanceof Error) return { line, message: err.cause.message };
  const text = message.split('\n').map((l) => l.trim()).filter((l) => l && !/^\(.*\)( \[Line .*\])?$/.test(l) && l !== 'Template render error:').join(' ')
    .replace(/^Template render error:\s*(\([^)]*\)\s*(\[Line [^\]]*\])?)?\s*/, '');
  return { line, message: text || message };
}

export class DbtJinja {
  readonly env: nunjucks.Environment;
  /** Names of the render in progress (ref, this, config…), swapped per render. */
  private names: Record<string, unknown> = {};
  /** The project's macros, by name, and the files they came from. */
  readonly macros: Record<string, (...args: unknown[]) => unknown> = {};

  constructor(macroFiles: readonly TemplateSource[], builtins: Record<string, unknown> = {}) {
    install();
    this.env = new nunjucks.Environment([], { autoescape: false, throwOnUndefined: false, dev: true });
    this.env.addExtension('do', new DoExtension());
    const env = this.env as unknown as { globals: Record<string, unknown> };
    const base: Record<string, unknown> = { ...env.globals, ...builtins, return: returnValue };
    env.globals = new Proxy(base, {
      has: () => true,
      get: (target, name) => {
        if (typeof name === 'symbol') return Reflect.get(target, name);
        if (Object.hasOwn(this.names, name)) return this.names[name];
        if (Object.hasOwn(this.macros, name)) return this.macros[name];
        return target[name];
      },
    });
    for (const file of macroFiles) {
      const tpl = this.compile(file);
      let exported: Record<string, unknown> = {};
      try {
        (tpl as unknown as { getExported(ctx: object, frame: null, cb: (e: unknown, v: Record<string, unknown>) => void): void })
          .getExported({}, null, (err, value) => { if (err) throw err; exported = value; });
      } catch (error) {
        const { line, message } = locate(error);
        throw new DbtProjectError(file.path, line, message);
      }
      for (const [name, fn] of Object.entries(exported)) {
        if (typeof fn === 'function') this.macros[name] = fn as (...args: unknown[]) => unknown;
      }
    }
  }

  /** Compile now, so a syntax error names its file and line at import. */
  compile(file: TemplateSource): nunjucks.Template {
    try {
      return new nunjucks.Template(file.source, this.env, file.path, true);
    } catch (error) {
      const { line, message } = locate(error);
      throw new DbtProjectError(file.path, line, message);
    }
  }

  /** Call `run` (a macro, say) with `names` in scope. */
  withNames<T>(names: Record<string, unknown>, run: () => T): T {
    const outer = this.names;
    this.names = names;
    try {
      return run();
    } finally {
      this.names = outer;
    }
  }

  /** Render with `names` in scope; errors name the file and line. */
  render(tpl: nunjucks.Template, file: string, names: Record<string, unknown>): string {
    const outer = this.names;
    this.names = names;
    try {
      return tpl.render({});
    } catch (error) {
      if (error instanceof DbtProjectError) throw error;
      const cause = (error as { cause?: unknown }).cause;
      if (cause instanceof DbtProjectError) throw cause;
      const { line, message } = locate(error);
      throw new DbtProjectError(file, line, message, { cause: cause ?? error });
    } finally {
      this.names = outer;
    }
  }

  renderString(source: string, file: string, names: Record<string, unknown>): string {
    return this.render(this.compile({ path: file, source }), file, names);
  }
}

/** Split nunjucks keyword arguments (`f(a, k=1)`) from positional ones. */
export function splitArgs(args: unknown[]): { positional: unknown[]; kwargs: Record<string, unknown> } {
  const last = args.at(-1);
  if (last && typeof last === 'object' && Object.hasOwn(last, '__keywords')) {
    const { __keywords: _, ...kwargs } = last as Record<string, unknown>;
    return { positional: args.slice(0, -1), kwargs };
  }
  return { positional: args, kwargs: {} };
}
