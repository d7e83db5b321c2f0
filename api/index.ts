/** The web UI and REST API. */
export { createApiServer, type ApiServer, type ApiServerOptions } from './server.ts';
export { hashPassword, verifyPassword, sessionSecret, standaloneAdmin, Auth, type Principal } from './auth.ts';
export { ApiError } from './errors.ts';
