/**
 * Pagination. A paginator looks at a response and the request that fetched it, and returns
 * the next request (changed fields only) or null when there are no more pages. Built-in styles
 * are plain data (`{ style: 'link' }`, ...), so the same spec pages an async task's loop and a
 * trigger's; a custom paginator registers by name, as a trigger does, and a spec names it.
 */
import { z } from 'zod';
import { valueAt, responseCheckSchema, checkResponse } from './checks.ts';
import { UnknownPaginatorError } from './errors.ts';

export interface PageRequest {
  endpoint: string;
  query: Record<string, unknown>;
}

export interface PageResponse {
  status: number;
  headers: Record<string, string | string[]>;
  url: string;
  body: unknown;
}

export type Paginator = (response: PageResponse, request: PageRequest, options: Record<string, unknown>) => Partial<PageRequest> | null;

export const paginationSchema = z.discriminatedUnion('style', [
  /** The `Link` header's rel="next" URL (GitHub, GitLab and RFC 8288 APIs). */
  z.object({ style: z.literal('link') }).strict(),
  /** A cursor in the JSON body, sent back as a query parameter; an empty cursor ends it. */
  z.object({ style: z.literal('cursor'), cursorPath: z.string().min(1), param: z.string().min(1) }).strict(),
  /** Page numbers from `start`; ends at a page whose `itemsPath` array is empty or shorter than `pageSize`. */
  z.object({
    style: z.literal('page'), param: z.string().min(1).default('page'), start: z.number().int().default(1),
    itemsPath: z.string().min(1), pageSize: z.number().int().positive().optional(),
  }).strict(),
  /** Offsets by `limit`; ends as `page` does. */
  z.object({
    style: z.literal('offset'), param: z.string().min(1).default('offset'), limitParam: z.string().min(1).default('limit'),
    limit: z.number().int().positive(), itemsPath: z.string().min(1),
  }).strict(),
  /** A paginator registered with registerPaginator in every process that runs it. */
  z.object({ style: z.literal('custom'), name: z.string().min(1), options: z.record(z.string(), z.unknown()).default({}) }).strict(),
]);

export const paginateSchema = z.object({
  pagination: paginationSchema,
  maxPages: z.number().int().positive().default(1_000),
  /** Stop after the first page that passes this check (plain data, so it runs in a trigger). */
  stopWhen: responseCheckSchema.optional(),
}).strict();

export type PaginationSpec = z.input<typeof paginationSchema>;
export type PaginateOptions = z.input<typeof paginateSchema>;

const registry = new Map<string, Paginator>();

/** Register a custom paginator under a stable name (a DAG file or a module it imports calls this). */
export function registerPaginator(name: string, paginator: Paginator): void {
  registry.set(name, paginator);
}

/** Parse an RFC 8288 Link header for rel="next". */
export function nextLink(header: string | string[] | undefined, base: string): string | null {
  const text = Array.isArray(header) ? header.join(', ') : header;
  if (!text) return null;
  for (const part of text.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (m && /;\s*rel\s*=\s*"?([^";]*\s)?next(\s[^";]*)?"?/i.test(m[2])) return new URL(m[1], base).toString();
  }
  return null;
}

const itemsOf = (body: unknown, itemsPath: string): unknown[] | null => {
  const items = valueAt(body, itemsPath);
  return Array.isArray(items) ? items : null;
};

/** The function behind a spec; a custom name must be registered in this process. */
export function paginatorFor(spec: z.output<typeof paginationSchema>): Paginator {
  switch (spec.style) {
    case 'link':
      return (res) => {
        const next = nextLink(res.headers.link, res.url);
        return next ? { endpoint: next, query: {} } : null;
      };
    case 'cursor':
      return (res, req) => {
        const cursor = valueAt(res.body, spec.cursorPath);
        return cursor === undefined || cursor === null || cursor === '' ? null : { query: { ...req.query, [spec.param]: cursor } };
      };
    case 'page':
      return (res, req) => {
        const items = itemsOf(res.body, spec.itemsPath);
        if (!items?.length || (spec.pageSize && items.length < spec.pageSize)) return null;
        const current = Number(req.query[spec.param] ?? spec.start);
        return { query: { ...req.query, [spec.param]: current + 1 } };
      };
    case 'offset':
      return (res, req) => {
        const items = itemsOf(res.body, spec.itemsPath);
        if (!items?.length || items.length < spec.limit) return null;
        const current = Number(req.query[spec.param] ?? 0);
        return { query: { ...req.query, [spec.param]: current + items.length, [spec.limitParam]: spec.limit } };
      };
    case 'custom': {
      const fn = registry.get(spec.name);
      if (!fn) throw new UnknownPaginatorError(`paginator "${spec.name}" is not registered in this process; call registerPaginator("${spec.name}", fn) in a module the DAG file imports (registered: ${[...registry.keys()].join(', ') || 'none'})`);
      return (res, req) => fn(res, req, spec.options);
    }
  }
}

/** The first request's query for a spec (offset pages send their limit from the start). */
export function firstQuery(spec: z.output<typeof paginationSchema>, query: Record<string, unknown>): Record<string, unknown> {
  if (spec.style === 'offset') return { [spec.limitParam]: spec.limit, ...query };
  return query;
}

export const stopsAfter = (options: z.output<typeof paginateSchema>, res: PageResponse): boolean =>
  options.stopWhen !== undefined && checkResponse(options.stopWhen, res);
