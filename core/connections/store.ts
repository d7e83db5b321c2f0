/**
 * Connections and variables kept in the metadata database. Password, extra and variable
 * values are sealed before they are written and opened after they are read, so a raw row
 * (a backup, a replica, a `select *`) never holds a secret.
 */
import type { Database, Executor } from '../db/client.ts';
import * as q from '../db/queries/connections.ts';
import type { SecretBox } from '../secrets/secret-box.ts';
import { validateConnection, type Connection } from './connection.ts';

export interface StoredVariable {
  key: string;
  value: string;
  description: string | null;
}

export class SecretStore {
  private made: SecretBox | null = null;

  /** `box` may be a factory: a key file is then only created when a secret is first stored or read. */
  constructor(private readonly database: Database, private readonly boxOf: SecretBox | (() => SecretBox)) {}

  private get box(): SecretBox {
    return this.made ??= typeof this.boxOf === 'function' ? this.boxOf() : this.boxOf;
  }

  private get ex(): Executor {
    return this.database.db;
  }

  private open(row: q.DbConnection): Connection {
    const what = `connection "${row.connId}"`;
    return validateConnection({
      connId: row.connId, connType: row.connType, description: row.description, host: row.host, schema: row.schema, login: row.login,
      password: row.password === null ? null : this.box.open(row.password, `${what} password`),
      port: row.port, extra: row.extra === null ? {} : JSON.parse(this.box.open(row.extra, `${what} extra`)),
    }, `${what} in the metadata database`);
  }

  async getConnection(connId: string): Promise<Connection | null> {
    const row = await q.getConnectionRow(this.ex, connId);
    return row && this.open(row);
  }

  async listConnections(): Promise<Connection[]> {
    return (await q.listConnectionRows(this.ex)).map((r) => this.open(r));
  }

  /** Returns false when the id exists and `replace` is not set. */
  async putConnection(conn: Connection, replace = false): Promise<boolean> {
    return q.putConnectionRow(this.ex, {
      connId: conn.connId, connType: conn.connType, description: conn.description, host: conn.host, schema: conn.schema,
      login: conn.login, port: conn.port,
      password: conn.password === null ? null : this.box.seal(conn.password),
      extra: Object.keys(conn.extra).length ? this.box.seal(JSON.stringify(conn.extra)) : null,
    }, replace);
  }

  async deleteConnections(connIds: string[]): Promise<number> {
    return q.deleteConnectionRows(this.ex, connIds);
  }

  async getVariable(key: string): Promise<StoredVariable | null> {
    const row = await q.getVariableRow(this.ex, key);
    return row && { key: row.key, value: this.box.open(row.val, `variable "${key}"`), description: row.description };
  }

  async listVariables(): Promise<StoredVariable[]> {
    return (await q.listVariableRows(this.ex)).map((r) => ({ key: r.key, value: this.box.open(r.val, `variable "${r.key}"`), description: r.description }));
  }

  async putVariable(key: string, value: string, description: string | null = null): Promise<void> {
    await q.putVariableRow(this.ex, key, this.box.seal(value), description);
  }

  async deleteVariables(keys: string[]): Promise<number> {
    return q.deleteVariableRows(this.ex, keys);
  }

  /** Re-seal every row not sealed with the current key; returns how many were rewritten. */
  async reseal(): Promise<{ connections: number; variables: number }> {
    let connections = 0;
    let variables = 0;
    for (const row of await q.listConnectionRows(this.ex)) {
      const stale = [row.password, row.extra].some((v) => v !== null && !this.box.isCurrent(v));
      if (stale) {
        await this.putConnection(this.open(row), true);
        connections++;
      }
    }
    for (const row of await q.listVariableRows(this.ex)) {
      if (this.box.isCurrent(row.val)) continue;
      await this.putVariable(row.key, this.box.open(row.val, `variable "${row.key}"`), row.description);
      variables++;
    }
    return { connections, variables };
  }
}
