/** What every handler reaches: the database, the DAG bag (params schemas), secrets and the live hub. */
import type { DagBag, Database, KwargsCodec, Masker, SecretStore } from '../core/index.ts';
import type { LiveHub } from './live.ts';

export interface ApiContext {
  readonly database: Database;
  /** The DAGs folder as this server imported it: params schemas for the trigger form and conf checks. */
  readonly dagBag: DagBag | null;
  readonly kwargs: KwargsCodec;
  /** Secrets of known connections and variables, so logs, XComs and kwargs print them as ***. */
  readonly masker: Masker;
  readonly live: LiveHub;
  /** A service process is healthy when it heartbeated this recently. */
  readonly healthThresholdMs: number;
  /** Connections and variables, decrypted (admins only see them, and masked). */
  readonly store: SecretStore | null;
}
