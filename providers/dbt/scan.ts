/**
 * The import-time reading of a dbt template, without rendering it (dbt's own "static parser"
 * does the same): split the text into Jinja tags, check that blocks open and close and that
 * brackets and quotes balance, and pull out `ref()`, `source()` and `config()` calls whose
 * arguments are literals. A model whose calls take computed arguments is marked dynamic and is
 * rendered instead. nunjucks compiles every template fully in the setup task; this pass keeps
 * the DAG file's import fast.
 */
import { DbtProjectError } from './errors.ts';

export interface ScannedCall {
  name: 'ref' | 'source' | 'config';
  args: unknown[];
  kwargs: Record<string, unknown>;
  line: number;
}

export interface ScanResult {
  calls: ScannedCall[];
  /** A call with arguments that are not literals: render the template to know them. */
  dynamic: boolean;
  /** Macro names defined in the file (`{% macro name(...) %}`), with their lines. */
  macros: { name: string; line: number }[];
}

const BLOCKS: Record<string, string> = {
  if: 'endif', for: 'endfor', macro: 'endmacro', call: 'endcall', filter: 'endfilter', raw: 'endraw',
  block: 'endblock', materialization: 'endmaterialization', test: 'endtest', snapshot: 'endsnapshot',
  docs: 'enddocs', set: 'endset',
};
const MIDDLE = new Set(['else', 'elif', 'elseif']);
const CALL = /\b(ref|source|config)\s*\(/g;

class LiteralParser {
  private i = 0;
  constructor(private readonly s: string) {}
  fail(): never {
    throw new SyntaxError('not a literal');
  }
  ws(): void {
    while (/\s/.test(this.s[this.i] ?? '')) this.i++;
  }
  /** `a, b, k=v)` up to the closing parenthesis; returns the position after it. */
  args(): { args: unknown[]; kwargs: Record<string, unknown>; end: number } {
    const args: unknown[] = [];
    const kwargs: Record<string, unknown> = {};
    this.ws();
    while (this.s[this.i] !== ')') {
      const kw = /^([A-Za-z_]\w*)\s*=(?!=)/.exec(this.s.slice(this.i));
      if (kw) {
        this.i += kw[0].length;
        kwargs[kw[1]] = this.value();
      } else {
        args.push(this.value());
      }
      this.ws();
      if (this.s[this.i] === ',') { this.i++; this.ws(); } else if (this.s[this.i] !== ')') this.fail();
    }
    return { args, kwargs, end: this.i + 1 };
  }
  value(): unknown {
    this.ws();
    const c = this.s[this.i];
    if (c === "'" || c === '"') {
      let out = '';
      for (this.i++; this.s[this.i] !== c; this.i++) {
        if (this.i >= this.s.length) this.fail();
        if (this.s[this.i] === '\\') this.i++;
        out += this.s[this.i];
      }
      this.i++;
      return out;
    }
    if (c === '[' || c === '(') {
      const close = c === '[' ? ']' : ')';
      const out: unknown[] = [];
      this.i++;
      for (this.ws(); this.s[this.i] !== close; this.ws()) {
        out.push(this.value());
        this.ws();
        if (this.s[this.i] === ',') this.i++;
        else if (this.s[this.i] !== close) this.fail();
      }
      this.i++;
      return out;
    }
    if (c === '{') {
      const out: Record<string, unknown> = {};
      this.i++;
      for (this.ws(); this.s[this.i] !== '}'; this.ws()) {
        const key = this.value();
        this.ws();
        if (this.s[this.i++] !== ':') this.fail();
        out[String(key)] = this.value();
        this.ws();
        if (this.s[this.i] === ',') this.i++;
        else if (this.s[this.i] !== '}') this.fail();
      }
      this.i++;
      return out;
    }
    const m = /^(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|true|false|none|True|False|None)(?![\w.(])/.exec(this.s.slice(this.i));
    if (!m) this.fail();
    this.i += m[0].length;
    const t = m[1].toLowerCase();
    return t === 'true' ? true : t === 'false' ? false : t === 'none' ? null : Number(m[1]);
  }
}

/** Brackets and quotes inside one tag; the error names what is unbalanced. */
function checkBalance(code: string, file: string, line: number): void {
  const stack: string[] = [];
  const pairs: Record<string, string> = { '(': ')', '[': ']', '{': '}' };
  for (let i = 0; i < code.length; i++) {
    const c = code[i];
    if (c === "'" || c === '"') {
      let j = i + 1;
      while (j < code.length && code[j] !== c) j += code[j] === '\\' ? 2 : 1;
      if (j >= code.length) throw new DbtProjectError(file, line, `unterminated string in "${code.trim()}"`);
      i = j;
    } else if (pairs[c]) {
      stack.push(pairs[c]);
    } else if (c === ')' || c === ']' || c === '}') {
      if (stack.pop() !== c) throw new DbtProjectError(file, line, `unexpected "${c}" in "${code.trim()}"`);
    }
  }
  if (stack.length) throw new DbtProjectError(file, line, `"${stack.at(-1)}" expected to close "${code.trim()}"`);
}

/** Tags of a template: `{{ … }}`, `{% … %}` (comments dropped), each with its 1-based line. */
function* tags(src: string, file: string): Generator<{ kind: '{{' | '{%'; code: string; line: number }> {
  let line = 1;
  let at = 0;
  const re = /\{[{%#]/g;
  for (let m = re.exec(src); m; m = re.exec(src)) {
    for (let k = src.indexOf('\n', at); k !== -1 && k < m.index; k = src.indexOf('\n', k + 1)) line++;
    at = m.index;
    const open = m[0];
    const close = open === '{{' ? '}}' : open === '{%' ? '%}' : '#}';
    let end = -1;
    if (open === '{#') {
      end = src.indexOf(close, m.index + 2);
    } else {
      // A closing marker inside a string literal doesn't close the tag.
      for (let i = m.index + 2, quote = ''; i < src.length - 1; i++) {
        const c = src[i];
        if (quote) { if (c === '\\') i++; else if (c === quote) quote = ''; } else if (c === "'" || c === '"') quote = c;
        else if (c === close[0] && src[i + 1] === '}') { end = i; break; }
      }
    }
    if (end < 0) throw new DbtProjectError(file, line, `"${open}" is never closed with "${close}"`);
    if (open !== '{#') yield { kind: open as '{{' | '{%', code: src.slice(m.index + 2, end).replace(/^-|-$/g, ''), line };
    re.lastIndex = end + 2;
  }
}

export function scanTemplate(src: string, file: string): ScanResult {
  const calls: ScannedCall[] = [];
  const macros: ScanResult['macros'] = [];
  const open: { tag: string; line: number }[] = [];
  let dynamic = false;
  let raw = false;
  for (const t of tags(src, file)) {
    const code = t.code.trim();
    if (t.kind === '{%') {
      const word = /^\w+/.exec(code)?.[0] ?? '';
      if (raw) { if (word === 'endraw') { raw = false; open.pop(); } continue; }
      if (word === 'set' && code.includes('=')) { /* one-line set: no block */ } else if (BLOCKS[word]) {
        open.push({ tag: word, line: t.line });
        if (word === 'raw') { raw = true; continue; }
        if (word === 'macro') {
          const name = /^macro\s+(\w+)\s*\(/.exec(code)?.[1];
          if (!name) throw new DbtProjectError(file, t.line, `a macro needs a name and an argument list: "{% ${code} %}"`);
          macros.push({ name, line: t.line });
        }
      } else if (word.startsWith('end')) {
        const top = open.pop();
        if (!top || BLOCKS[top.tag] !== word) {
          throw new DbtProjectError(file, t.line, top ? `"${word}" closes "{% ${top.tag} %}" from line ${top.line}; expected "${BLOCKS[top.tag]}"` : `"${word}" has no block to close`);
        }
      } else if (MIDDLE.has(word) && open.at(-1)?.tag !== 'if' && !(word === 'else' && open.at(-1)?.tag === 'for')) {
        throw new DbtProjectError(file, t.line, `"${word}" outside an if block`);
      }
    }
    if (raw) continue;
    checkBalance(code, file, t.line);
    for (const m of code.matchAll(CALL)) {
      try {
        const p = new LiteralParser(code.slice(m.index! + m[0].length));
        const { args, kwargs } = p.args();
        calls.push({ name: m[1] as ScannedCall['name'], args, kwargs, line: t.line });
      } catch {
        dynamic = true;
      }
    }
  }
  const top = open.pop();
  if (top) throw new DbtProjectError(file, top.line, `"{% ${top.tag} %}" is never closed with "{% ${BLOCKS[top.tag]} %}"`);
  return { calls, dynamic, macros };
}
