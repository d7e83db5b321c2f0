/**
 * BigQuery type names in SQL (casts, typed literals, column definitions, `ARRAY<…>` and
 * `STRUCT<…>`) as DuckDB types: GoogleSQL's names and aliases only (INT64, INTEGER, FLOAT64,
 * BOOL, BOOLEAN…; not FLOAT or RECORD, which BigQuery's SQL does not know either). BigQuery's
 * TIMESTAMP is an instant (DuckDB's TIMESTAMPTZ), its DATETIME a wall-clock time (DuckDB's
 * TIMESTAMP); NUMERIC is DECIMAL(38, 9).
 */
import { closeOf, isOp, skip, splitTop, UnsupportedSqlError, type Token } from './sql-lexer.ts';

const SIMPLE: Record<string, string> = {
  INT64: 'BIGINT', INT: 'BIGINT', INTEGER: 'BIGINT', SMALLINT: 'BIGINT', BIGINT: 'BIGINT', TINYINT: 'BIGINT', BYTEINT: 'BIGINT',
  FLOAT64: 'DOUBLE',
  NUMERIC: 'DECIMAL(38, 9)', DECIMAL: 'DECIMAL(38, 9)', BIGNUMERIC: 'DECIMAL(38, 9)', BIGDECIMAL: 'DECIMAL(38, 9)',
  BOOL: 'BOOLEAN', BOOLEAN: 'BOOLEAN', STRING: 'VARCHAR', BYTES: 'BLOB', DATE: 'DATE', DATETIME: 'TIMESTAMP', TIME: 'TIME',
  TIMESTAMP: 'TIMESTAMPTZ', JSON: 'JSON', INTERVAL: 'INTERVAL',
};

/** Words that name a scalar type, for telling a typed literal (`DATE '2024-01-01'`) from a name. */
export const isTypeName = (word: string) => word.toUpperCase() in SIMPLE;

export const duckScalarType = (word: string): string | undefined => SIMPLE[word.toUpperCase()];

const quoteName = (t: Token) => (t.kind === 'path' ? `"${t.parts!.join('.').replace(/"/g, '""')}"` : t.text);

/**
 * The BigQuery type starting at token `i` (after whitespace) as a DuckDB type, and the index
 * after it. Parameterized types (`STRING(10)`, `NUMERIC(10, 2)`) keep their parameters.
 */
export function parseType(tokens: Token[], i: number, to = tokens.length): { duck: string; next: number } {
  const at = skip(tokens, i, to);
  const t = tokens[at];
  const word = t?.kind === 'word' ? t.text.toUpperCase() : '';
  const after = skip(tokens, at + 1, to);
  if ((word === 'ARRAY' || word === 'STRUCT') && isOp(tokens[after], '<')) {
    const close = closeOf(tokens, after, to);
    if (word === 'ARRAY') return { duck: `${parseType(tokens, after + 1, close).duck}[]`, next: close + 1 };
    const fields = splitTop(tokens, after + 1, close).map(([from, end]) => {
      const name = skip(tokens, from, end);
      return `${quoteName(tokens[name])} ${parseType(tokens, name + 1, end).duck}`;
    });
    return { duck: `STRUCT(${fields.join(', ')})`, next: close + 1 };
  }
  const base = SIMPLE[word];
  if (word === 'GEOGRAPHY' || word === 'RANGE') throw new UnsupportedSqlError(`the emulator does not store ${word}`);
  // As BigQuery says it; FLOAT, RECORD and the like are REST schema names, not SQL types.
  if (!base) throw Object.assign(new Error(`Type not found: ${t?.text ?? '(missing)'}`), { reason: 'invalidQuery' });
  if (isOp(tokens[after], '(')) {
    const close = closeOf(tokens, after, to);
    const params = tokens.slice(after + 1, close).map((x) => x.text).join('');
    const family = base.replace(/\(.*\)$/, '');
    return { duck: family === 'DECIMAL' || family === 'VARCHAR' ? `${family}(${params})` : family, next: close + 1 };
  }
  return { duck: base, next: at + 1 };
}
