/** `pools set|list|delete`. */
import { queries, UpdraftError } from '../../core/index.ts';
import { openEnv, printJson, table, out } from '../env.ts';
import { UsageError } from '../errors.ts';

export async function poolsSet(name: string, slotsRaw: string, includeDeferred: boolean, description: string | undefined): Promise<void> {
  const slots = Number(slotsRaw);
  if (!Number.isInteger(slots) || slots < -1) throw new UsageError(`pool slots must be an integer ≥ 0, or -1 for unlimited; got "${slotsRaw}"`);
  const { database } = await openEnv({ migrate: true });
  try {
    await queries.pools.setPool(database.db, name, slots, includeDeferred, description ?? null);
    out(`pool ${name}: ${slots === -1 ? 'unlimited' : `${slots} slot(s)`}${includeDeferred ? ', deferred tasks keep their slots' : ''}\n`);
  } finally {
    await database.close();
  }
}

export async function poolsList(json: boolean): Promise<void> {
  const { database } = await openEnv();
  try {
    const rows = await queries.pools.listPools(database.db);
    if (json) printJson(rows);
    else out(`${table(rows, ['name', 'slots', 'used', 'includeDeferred', 'description'])}\n`);
  } finally {
    await database.close();
  }
}

export async function poolsDelete(name: string): Promise<void> {
  if (name === 'default_pool') throw new UsageError('default_pool cannot be deleted; resize it with `updraft pools set default_pool <slots>`');
  const { database } = await openEnv();
  try {
    if (!(await queries.pools.deletePool(database.db, name))) throw new UpdraftError(`no pool "${name}"; see \`updraft pools list\``);
    out(`deleted pool ${name}\n`);
  } finally {
    await database.close();
  }
}
