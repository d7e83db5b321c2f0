/**
 * Renders an operator's templated fields as Airflow does: Jinja syntax through nunjucks (no
 * autoescaping), strings rendered, arrays and plain objects walked, and a string ending in one of
 * the operator's template extensions read as a file from the DAG's search path. It owns the
 * nunjucks environments and turns every failure into a TemplateRenderError that names the field,
 * the template and, when that is the cause, the undefined name and what to do about it.
 */
import nunjucks from 'nunjucks';
import { UpdraftError } from '../errors.ts';
import { activeScope, isPlain, RenderProblem, Scope, type TemplateLookups } from './context.ts';

export { buildTemplateContext, builtinMacros, strftime, strptime, TemplateDate, type ContextInput, type TemplateLookups } from './context.ts';

export interface RenderRequest {
  /** Field name → value. Strings are rendered; arrays and plain objects recursively (keys untouched); other values pass through. */
  fields: Record<string, unknown>;
  /** A string field value ending in one of these (e.g. '.sql', '.json') is the path of a template file. */
  templateExt: readonly string[];
  /** Folders to find template files in, in order: the DAG file's folder first, then the DAG's templateSearchPath entries. */
  searchPath: readonly string[];
  /** The plain context (see buildTemplateContext). */
  context: Record<string, unknown>;
  lookups: TemplateLookups;
  userDefinedMacros?: Record<string, unknown>;
  userDefinedFilters?: Record<string, (...args: any[]) => unknown>;
  /** For error messages. */
  where: { dagId: string; taskId: string };
}

/** A field that cannot be rendered. Rendering fails the same way on every try, so it is never retried. */
export class TemplateRenderError extends UpdraftError {
  readonly retryable = false;
  readonly dagId: string;
  readonly taskId: string;
  /** The field, with the path inside it for nested values (`env.PATH`, `args[1]`). */
  readonly field: string;
  /** The template file's name as the field gives it, or the start of the inline template. */
  readonly template: string;
  /** The undefined name the template used (`params.limit`, `var.value.key`, `conn.db`), when that is what failed. */
  readonly undefinedName: string | null;

  constructor(at: RenderTarget, detail: string, undefinedName: string | null = null, options?: { cause?: unknown }) {
    super(`DAG "${at.dagId}", task "${at.taskId}": cannot render field "${at.field}" (${at.file ? 'template file' : 'template'} "${at.template}"): ${detail}`, options);
    this.dagId = at.dagId;
    this.taskId = at.taskId;
    this.field = at.field;
    this.template = at.template;
    this.undefinedName = undefinedName;
  }
}

/** Where a render failed, for TemplateRenderError. */
export interface RenderTarget { dagId: string; taskId: string; field: string; template: string; file: boolean }

const INLINE_CACHE_SIZE = 500;
/** Filters whose job is to handle an undefined value. */
const LENIENT_FILTERS = new Set(['default', 'd']);

interface CachedEnv { env: nunjucks.Environment; inline: Map<string, nunjucks.Template> }
interface EnvInternals { globals: Record<string, unknown>; filters: Record<string, (...args: any[]) => unknown> }

const envs = new Map<string, WeakMap<object, CachedEnv>>();
const NO_FILTERS = {};

/** Jinja drops a template's single trailing newline (keep_trailing_newline=False); so does Updraft. */
const trimTrailingNewline = (src: string) => src.replace(/\r?\n$/, '');

class JinjaFileLoader extends nunjucks.FileSystemLoader {
  override getSource(name: string): nunjucks.LoaderSource {
    const source = super.getSource(name);
    if (source) source.src = trimTrailingNewline(source.src);
    return source;
  }
}

function environment(searchPath: readonly string[], filters: Record<string, (...args: any[]) => unknown> | undefined): CachedEnv {
  const key = JSON.stringify(searchPath);
  let byFilters = envs.get(key);
  if (!byFilters) envs.set(key, (byFilters = new WeakMap()));
  const cached = byFilters.get(filters ?? NO_FILTERS);
  if (cached) return cached;

  const loaders = searchPath.length ? [new JinjaFileLoader([...searchPath], { watch: false, noCache: false })] : [];
  const env = new nunjucks.Environment(loaders, { autoescape: false, throwOnUndefined: true, dev: true });
  for (const [name, fn] of Object.entries(filters ?? {})) env.addFilter(name, fn);
  const internals = env as unknown as EnvInternals;
  // Top-level names come from the active scope through globals (nunjucks copies the render
  // context, so only globals can see each lookup), keeping range(), cycler() and joiner().
  const builtins = internals.globals;
  internals.globals = new Proxy(builtins, {
    has: () => true,
    get: (target, name) => {
      if (typeof name === 'symbol') return Reflect.get(target, name);
      const scope = activeScope();
      if (scope && Object.hasOwn(scope.names, name)) return scope.lookup(name);
      return Object.hasOwn(target, name) ? target[name] : scope?.lookup(name);
    },
  });
  // nunjucks filters turn undefined into '' (`{{ params.nope | upper }}` would print nothing); Jinja's strict mode fails.
  for (const [name, fn] of Object.entries(internals.filters)) {
    if (LENIENT_FILTERS.has(name)) continue;
    internals.filters[name] = function strict(this: unknown, value: unknown, ...rest: unknown[]) {
      if (value === undefined) {
        const last = activeScope()?.last;
        throw new RenderProblem(last?.missing ? last.path : null, `the filter "${name}" got an undefined value`);
      }
      return fn.call(this, value, ...rest);
    };
  }
  const made = { env, inline: new Map<string, nunjucks.Template>() };
  byFilters.set(filters ?? NO_FILTERS, made);
  return made;
}

function inlineTemplate(cached: CachedEnv, src: string): nunjucks.Template {
  let tpl = cached.inline.get(src);
  if (!tpl) {
    if (cached.inline.size >= INLINE_CACHE_SIZE) cached.inline.delete(cached.inline.keys().next().value!);
    tpl = new nunjucks.Template(trimTrailingNewline(src), cached.env);
    cached.inline.set(src, tpl);
  }
  return tpl;
}

const TEMPLATE_SYNTAX = /\{\{|\{%|\{#/;

function isTemplateFile(value: string, templateExt: readonly string[]): boolean {
  return !value.includes('\n') && !TEMPLATE_SYNTAX.test(value) && templateExt.some((ext) => ext && value.endsWith(ext));
}

/** Renders every templated field; the input is left untouched and a new record returned. */
export async function renderFields(req: RenderRequest): Promise<Record<string, unknown>> {
  const scope = new Scope(req.context, req.userDefinedMacros ?? {}, req.lookups);
  const cached = environment(req.searchPath, req.userDefinedFilters);

  const renderString = async (value: string, field: string): Promise<string> => {
    const file = isTemplateFile(value, req.templateExt);
    const at: RenderTarget = { ...req.where, field, file, template: file ? value : snippet(value) };
    let tpl: nunjucks.Template;
    if (file) {
      try {
        tpl = cached.env.getTemplate(value);
      } catch (error) {
        const folders = req.searchPath.length ? req.searchPath.join(', ') : '(none)';
        if (/template not found/.test(String((error as Error).message))) {
          throw new TemplateRenderError(at, `the file was not found in the template search path: ${folders}. Put it in the DAG file's folder or add its folder to templateSearchPath`);
        }
        throw explain(error, scope, at, req.searchPath);
      }
    } else {
      tpl = inlineTemplate(cached, value);
    }
    try {
      return await scope.render(() => tpl.render({}));
    } catch (error) {
      throw error instanceof RenderProblem || isNunjucksError(error) ? explain(error, scope, at, req.searchPath) : error;
    }
  };

  const walk = async (value: unknown, field: string): Promise<unknown> => {
    if (typeof value === 'string') return renderString(value, field);
    if (Array.isArray(value)) {
      const out: unknown[] = [];
      for (let i = 0; i < value.length; i++) out.push(await walk(value[i], `${field}[${i}]`));
      return out;
    }
    if (isPlain(value)) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = await walk(v, `${field}.${k}`);
      return out;
    }
    return value;
  };

  const rendered: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(req.fields)) rendered[name] = await walk(value, name);
  return rendered;
}

function snippet(src: string): string {
  const flat = src.replace(/\s+/g, ' ').trim();
  return flat.length > 80 ? `${flat.slice(0, 79)}…` : flat;
}

const isNunjucksError = (e: unknown) => e instanceof Error && e.name === 'Template render error';

/** Turns whatever a render threw into an error that says which name or line failed and what to do. */
function explain(error: unknown, scope: Scope, at: RenderTarget, searchPath: readonly string[]): TemplateRenderError {
  const err = error as { message?: string; lineno?: number; colno?: number; cause?: unknown };
  const cause = error instanceof RenderProblem ? error : err.cause;
  const message = String(err.message ?? error);
  // Errors nunjucks wraps at run time carry 0-based positions; its own parse and output errors are 1-based.
  const shift = err.cause ? 1 : 0;
  const line = err.lineno ? err.lineno + shift : err.cause && err.colno ? 1 : 0;
  const paths = [...message.matchAll(/\(([^()\n]+)\)(?: \[Line [^\]]*\])?\n/g)].map((m) => m[1]).filter((p) => p !== 'unknown path');
  const inFile = paths.at(-1);
  const place = line ? ` (line ${line}${err.colno ? `, column ${err.colno + shift}` : ''}${inFile ? ` of ${inFile}` : ''})` : inFile ? ` (in ${inFile})` : '';

  let name: string | null = null;
  let detail: string;
  if (cause instanceof RenderProblem) {
    name = cause.undefinedName;
    detail = name ? `"${name}" is undefined${place}; ${cause.message}. ${advice(name)}` : `${cause.message}${place}`;
  } else if (/Unable to call `(.+?)`, which is undefined or falsey/.test(message)) {
    // The call's arguments resolve after the function, so the name comes from nunjucks' message.
    name = /Unable to call `(.+?)`/.exec(message)![1].replace(/\["([^"]*)"\]/g, '.$1');
    detail = `"${name}" is undefined, so it cannot be called${place}. ${advice(name)}`;
  } else if (/attempted to output null or undefined value/.test(message)) {
    const last = scope.last;
    if (last?.missing) {
      name = last.path;
      detail = `"${name}" is undefined${place}. ${advice(name)}`;
    } else if (last?.isNull) {
      detail = `"${last.path}" is null${place}. Give it a value, or a fallback with | default('...', true)`;
    } else {
      detail = `an expression printed an undefined or null value${place}, e.g. a macro or filter that returned nothing`;
    }
  } else {
    const last = message.split('\n').map((l) => l.trim()).filter(Boolean).at(-1) ?? message;
    detail = `${last.replace(/^(Template render error: )?(Error: )?/, '')}${place}`;
    if (/template not found/.test(detail)) detail += `; searched: ${searchPath.length ? searchPath.join(', ') : '(no folders)'}`;
  }
  return new TemplateRenderError(at, detail, name, { cause: cause ?? error });
}

/** What to do about an undefined name, by where it was looked for. */
function advice(name: string): string {
  const [root, ...rest] = name.split('.');
  const fallback = 'or give a fallback with | default(...)';
  if (root === 'params') return `Pass it in the DAG's params or the run's conf, ${fallback}`;
  if (root === 'dag_run' && rest[0] === 'conf') return `Pass it in the run's conf, ${fallback}`;
  if (root === 'var' && (rest[0] === 'value' || rest[0] === 'json') && rest[1]) {
    const key = rest[1];
    if (rest.length > 2) return `Variable "${key}" holds JSON without that key; add it to the variable's value, ${fallback}`;
    return `Set the variable "${key}" (UPDRAFT_VAR_${key.toUpperCase()}, or under "variables" in the secrets file), ${fallback}`;
  }
  if (root === 'var') return 'Read variables as var.value.<key> (raw text) or var.json.<key> (parsed JSON)';
  if (root === 'conn' && rest.length > 1) return `Connection "${rest[0]}" has no field "${rest.slice(1).join('.')}"; connections have conn_id, conn_type, host, schema, login, password, port and extra`;
  if (root === 'conn' && rest[0]) return `Create the connection "${rest[0]}" (\`updraft connections add ${rest[0]} --uri ...\` or UPDRAFT_CONN_${rest[0].toUpperCase()})`;
  if (root === 'macros') return `There is no macro "${rest[0]}"; define it in the DAG's userDefinedMacros`;
  if (rest.length) return `"${root}" has no "${rest.join('.')}"; check the spelling, ${fallback}`;
  return `Define it in the DAG's userDefinedMacros or pass it in params (as params.${root}), check the spelling, ${fallback}`;
}
