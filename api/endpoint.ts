/**
 * One endpoint = one zod-described route + the role it needs + a handler. `mount` turns each
 * into an OpenAPI route on the app: the request is validated by the same schemas the OpenAPI
 * document shows, the principal is checked (role, CSRF) before the handler runs, and with
 * `checkResponses` every answer is parsed with its response schema too (the tests run so).
 */
import { createRoute, type OpenAPIHono, type z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { ApiRole } from '../core/index.ts';
import { Auth, CSRF_HEADER, type Principal } from './auth.ts';
import { ApiError } from './errors.ts';
import { errorSchema } from './schemas.ts';
import type { ApiContext } from './context.ts';

type Obj = z.ZodObject<z.ZodRawShape> | undefined;
type Out<T> = T extends z.ZodTypeAny ? z.output<T> : Record<string, never>;

export interface Input<P extends Obj, Q extends Obj, B extends z.ZodTypeAny | undefined> {
  params: Out<P>;
  query: Out<Q>;
  body: Out<B>;
  principal: Principal;
  c: Context;
}

export interface EndpointDef<P extends Obj, Q extends Obj, B extends z.ZodTypeAny | undefined, R extends z.ZodTypeAny> {
  method: 'get' | 'post' | 'patch' | 'delete';
  path: string;
  summary: string;
  tag: string;
  role: ApiRole;
  params?: P;
  query?: Q;
  body?: B;
  response: R;
  status?: 200 | 201;
}

export interface Endpoint {
  def: EndpointDef<Obj, Obj, z.ZodTypeAny | undefined, z.ZodTypeAny>;
  handler: (input: Input<Obj, Obj, z.ZodTypeAny | undefined>, ctx: ApiContext) => Promise<unknown>;
}

export function endpoint<P extends Obj = undefined, Q extends Obj = undefined, B extends z.ZodTypeAny | undefined = undefined, R extends z.ZodTypeAny = z.ZodTypeAny>(
  def: EndpointDef<P, Q, B, R>,
  handler: (input: Input<P, Q, B>, ctx: ApiContext) => Promise<unknown>,
): Endpoint {
  return { def, handler } as unknown as Endpoint;
}

export function mount(app: OpenAPIHono, endpoints: Endpoint[], ctx: ApiContext, auth: Auth, checkResponses: boolean): void {
  for (const { def, handler } of endpoints) {
    const status = def.status ?? 200;
    const route = createRoute({
      method: def.method, path: def.path, summary: def.summary, tags: [def.tag],
      security: [{ session: [] }, { bearer: [] }],
      request: {
        ...(def.params ? { params: def.params } : {}),
        ...(def.query ? { query: def.query } : {}),
        ...(def.body ? { body: { content: { 'application/json': { schema: def.body } }, required: true } } : {}),
      },
      responses: {
        [status]: { description: def.summary, content: { 'application/json': { schema: def.response } } },
        default: { description: 'An error, in one shape for every route', content: { 'application/json': { schema: errorSchema } } },
      },
    });
    app.openapi(route, (async (c: Context) => {
      const principal = Auth.check(await auth.identify(c), c.req.method, def.role, c.req.header(CSRF_HEADER));
      const v = c.req as unknown as { valid(k: string): unknown };
      const input = {
        params: def.params ? v.valid('param') : {}, query: def.query ? v.valid('query') : {}, body: def.body ? v.valid('json') : {}, principal, c,
      } as Input<Obj, Obj, z.ZodTypeAny | undefined>;
      const body = (await handler(input, ctx)) ?? null;
      if (checkResponses) {
        // As the client will read it: dates become strings.
        const parsed = def.response.safeParse(JSON.parse(JSON.stringify(body)));
        if (!parsed.success) throw new ApiError(500, 'response_schema', `${def.method.toUpperCase()} ${def.path} answered outside its schema`, parsed.error.issues);
      }
      return c.json(body as never, status);
    }) as never);
  }
}
