/** Rendered templated fields, one row per TI: the latest try's. */
import { eq, sql, type SQL } from 'drizzle-orm';
import { renderedFields } from '../schema.ts';
import type { Executor } from '../client.ts';

export interface RenderedWrite {
  tiId: number;
  tryNumber: number;
  fields: Record<string, unknown>;
}

export function writeRenderedStatement(ex: Executor, rows: RenderedWrite[]): SQL | null {
  if (!rows.length) return null;
  return ex.insert(renderedFields).values(rows.map((r) => ({ ...r, renderedAt: new Date() })))
    .onConflictDoUpdate({ target: renderedFields.tiId, set: { tryNumber: sql`excluded.try_number`, fields: sql`excluded.fields`, renderedAt: sql`excluded.rendered_at` } })
    .getSQL();
}

export async function readRendered(ex: Executor, tiId: number): Promise<{ tryNumber: number; fields: Record<string, unknown> } | null> {
  const [row] = await ex.select({ tryNumber: renderedFields.tryNumber, fields: renderedFields.fields }).from(renderedFields).where(eq(renderedFields.tiId, tiId));
  return row ? { tryNumber: row.tryNumber, fields: row.fields as Record<string, unknown> } : null;
}
