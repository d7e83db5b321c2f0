// A small SQL formatter for rendered fields: a line break before each major clause (unless it
// already starts a line), indented by parenthesis depth, and keyword highlighting. Strings,
// quoted identifiers and comments pass through untouched. Returns escaped HTML.
import { esc } from './api.js';

const KEYWORDS = new Set(`select from where group by order having limit offset join left right inner outer full cross on using
  union all intersect except distinct with as recursive merge into when matched not then else end case insert update delete values
  set create or replace table view temporary temp if exists drop alter and in is null like between over partition window qualify
  cluster options struct array cast safe_cast interval true false asc desc rows range unbounded preceding following current row
  begin commit rollback declare return returns language function procedure schema source target by exists any some`.split(/\s+/));

/** Clauses that start a new line; the first word of a multi-word clause marks it. */
const BREAK_BEFORE = new Set(['select', 'from', 'where', 'group', 'order', 'having', 'limit', 'join', 'union', 'intersect', 'except',
  'with', 'merge', 'when', 'insert', 'update', 'delete', 'values', 'set', 'create', 'qualify', 'window', 'cluster', 'partition',
  'left', 'right', 'inner', 'full', 'cross']);
const JOIN_PREFIX = new Set(['left', 'right', 'inner', 'full', 'cross']);

const TOKEN = /(--[^\n]*|\/\*[\s\S]*?\*\/|#[^\n]*)|('(?:[^'\\]|\\.)*'|"""[\s\S]*?"""|"(?:[^"\\]|\\.)*"|`[^`]*`)|([A-Za-z_][A-Za-z0-9_]*)|(\d+(?:\.\d+)?)|(\s+)|([\s\S])/g;

export function formatSql(sql) {
  const tokens = [];
  for (const m of String(sql).matchAll(TOKEN)) {
    if (m[1]) tokens.push({ t: 'comment', v: m[1] });
    else if (m[2]) tokens.push({ t: 'string', v: m[2] });
    else if (m[3]) tokens.push({ t: 'word', v: m[3] });
    else if (m[4]) tokens.push({ t: 'num', v: m[4] });
    else if (m[5]) tokens.push({ t: 'ws', v: m[5] });
    else tokens.push({ t: 'punct', v: m[6] });
  }
  const out = [];
  let depth = 0;
  // One entry per open parenthesis: whether it holds a window (OVER (...)), which stays on one line.
  const parens = [];
  // Inside CASE … END, WHEN and ELSE belong to the expression and stay on its line.
  let cases = 0;
  let lineHasText = false;
  let prevWord = '';
  tokens.forEach((tok, i) => {
    if (tok.t === 'ws') {
      if (tok.v.includes('\n')) lineHasText = false;
      out.push(esc(tok.v));
      return;
    }
    if (tok.t === 'word') {
      const lower = tok.v.toLowerCase();
      const nextWord = tokens.slice(i + 1).find((x) => x.t !== 'ws');
      const isClause = BREAK_BEFORE.has(lower)
        && !(JOIN_PREFIX.has(lower) && !/^(join|outer)$/i.test(nextWord?.v ?? ''))
        && !(lower === 'join' && JOIN_PREFIX.has(prevWord))
        && !(lower === 'partition' && prevWord !== 'by' && !/^by$/i.test(nextWord?.v ?? ''))
        && !(lower === 'set' && prevWord === 'update')
        && !(['insert', 'update', 'delete', 'when'].includes(lower) && prevWord === 'then')
        && !parens[parens.length - 1]
        && !(lower === 'when' && cases > 0);
      if (isClause && lineHasText && !(lower === 'partition' && prevWord === 'by')) {
        while (out.length && /^[ \t]+$/.test(out[out.length - 1])) out.pop();
        out.push(`\n${'  '.repeat(depth)}`);
      }
      if (lower === 'case') cases++;
      if (lower === 'end' && cases > 0) cases--;
      out.push(KEYWORDS.has(lower) ? `<span class="kw">${esc(tok.v)}</span>` : esc(tok.v));
      prevWord = lower;
      lineHasText = true;
      return;
    }
    if (tok.t === 'punct') {
      if (tok.v === '(') { depth++; parens.push(prevWord === 'over'); }
      if (tok.v === ')') { depth = Math.max(0, depth - 1); parens.pop(); }
    }
    const cls = tok.t === 'comment' ? 'cm' : tok.t === 'string' ? 'str' : tok.t === 'num' ? 'num' : '';
    out.push(cls ? `<span class="${cls}">${esc(tok.v)}</span>` : esc(tok.v));
    if (tok.t !== 'comment') prevWord = tok.t === 'punct' ? prevWord : '';
    lineHasText = true;
  });
  return out.join('').replace(/^\s*\n/, '');
}

/** Whether a value reads like SQL (for nested fields the server did not flag). */
export function looksLikeSql(key, value) {
  return typeof value === 'string' && (/(^|_)(sql|query|bql)$/i.test(key) || /^\s*(--[^\n]*\n\s*)*(select|with|insert|merge|create|update|delete|declare|begin)\b/i.test(value));
}
