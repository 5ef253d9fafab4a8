/**
 * The subset of Go's text/template that docker's `--format` uses, with docker's functions.
 *
 * Syntax: `{{pipeline}}` with `{{-`/`-}}` trimming and `{{/* comments *\/}}`; pipelines of
 * commands joined by `|`; fields `.A.B`, `$`, `$var.A`; string (`"…"`, `` `…` ``), number,
 * `true`/`false`/`nil` literals; parenthesised pipelines; `{{$x := …}}` / `{{$x = …}}`;
 * `if`/`else if`/`else`, `range` (with `$i, $e :=` and `else`), `with`, `break`, `continue`.
 * Functions: json, join, split, lower, upper, title, pad, truncate, index, len, print,
 * printf, println, eq, ne, lt, le, gt, ge, and, or, not.
 *
 * Values are JavaScript values printed the way Go's fmt prints their Go counterparts
 * (`[a b]` for lists, `map[k:v]` for objects, `<no value>` for a missing map key). An object
 * created with `strictContext` behaves like a Go struct: an unknown field is an error, and
 * `json` escapes HTML as docker's formatter contexts do.
 */
import { goJson } from '../engine/api-types.js';

export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

const STRICT = Symbol('strictContext');

/** Marks `obj` as a struct-like docker formatter context named `typeName`. */
export function strictContext<T extends object>(obj: T, typeName: string): T {
  Object.defineProperty(obj, STRICT, { value: typeName, enumerable: false });
  return obj;
}

function strictName(v: unknown): string | undefined {
  return typeof v === 'object' && v !== null ? ((v as Record<symbol, string>)[STRICT]) : undefined;
}

// ---------------------------------------------------------------------------------------------
// parse tree

interface Pipe {
  decl: string[];
  cmds: Arg[][];
  pos: number;
}

type Arg =
  | { k: 'field'; base: 'dot' | 'var'; name?: string; chain: string[]; pos: number; src: string }
  | { k: 'lit'; v: unknown; pos: number }
  | { k: 'fn'; name: string; pos: number }
  | { k: 'pipe'; pipe: Pipe; chain: string[]; pos: number };

interface ControlNode {
  t: 'if' | 'with' | 'range';
  pipe: Pipe;
  body: Node[];
  else?: Node[];
}

type Node =
  | { t: 'text'; text: string }
  | { t: 'action'; pipe: Pipe }
  | ControlNode
  | { t: 'break' | 'continue' };

type Tok =
  | { k: 'field'; v: string; pos: number }
  | { k: 'var'; v: string; pos: number }
  | { k: 'str'; v: string; pos: number }
  | { k: 'num'; v: number; pos: number }
  | { k: 'ident'; v: string; pos: number }
  | { k: 'op'; v: '(' | ')' | '|' | ':=' | '=' | ','; pos: number };

export class Template {
  readonly #root: Node[];
  readonly #src: string;

  private constructor(src: string, root: Node[]) {
    this.#src = src;
    this.#root = root;
  }

  /** Parses `src`; throws TemplateError with Go's `template: :<line>: …` wording. */
  static parse(src: string): Template {
    return new Template(src, new Parser(src).parse());
  }

  /** Runs the template on `data`; `funcs` replaces the default functions by name. */
  execute(data: unknown, funcs?: Readonly<Record<string, TemplateFunc>>): string {
    const ex = new Executor(this.#src, { ...FUNCS, ...(funcs ?? {}) }, data);
    return ex.run(this.#root, data);
  }
}

export type TemplateFunc = (...args: unknown[]) => unknown;

function lineOf(src: string, pos: number): number {
  let line = 1;
  for (let i = 0; i < pos && i < src.length; i++) if (src[i] === '\n') line++;
  return line;
}

class Parser {
  readonly #src: string;
  #i = 0;

  constructor(src: string) {
    this.#src = src;
  }

  #fail(pos: number, msg: string): never {
    throw new TemplateError(`template: :${lineOf(this.#src, pos)}: ${msg}`);
  }

  /** Splits the source into text and actions, then builds the tree. */
  parse(): Node[] {
    const items: Array<{ text: string } | { action: string; pos: number }> = [];
    const s = this.#src;
    let trimNext = false;
    while (this.#i < s.length) {
      const open = s.indexOf('{{', this.#i);
      let text = open < 0 ? s.slice(this.#i) : s.slice(this.#i, open);
      if (trimNext) text = text.replace(/^\s+/, '');
      trimNext = false;
      if (open < 0) {
        items.push({ text });
        break;
      }
      let start = open + 2;
      if (/^-[ \t\r\n]/.test(s.slice(start, start + 2))) {
        text = text.replace(/\s+$/, '');
        start += 2;
      }
      items.push({ text });
      const close = this.#findClose(start);
      let end = close;
      if (/[ \t\r\n]-$/.test(s.slice(close - 2, close))) {
        end = close - 2;
        trimNext = true;
      }
      items.push({ action: s.slice(start, end), pos: start });
      this.#i = close + 2;
    }
    let k = 0;
    const block = (stopAt: string[]): { nodes: Node[]; stop?: string; rest?: Tok[]; pos?: number } => {
      const nodes: Node[] = [];
      while (k < items.length) {
        const it = items[k++]!;
        if ('text' in it) {
          if (it.text !== '') nodes.push({ t: 'text', text: it.text });
          continue;
        }
        const raw = it.action.trim();
        if (raw.startsWith('/*')) {
          if (!raw.endsWith('*/')) this.#fail(it.pos, 'unclosed comment');
          continue;
        }
        const toks = this.#lex(it.action, it.pos);
        const head = toks[0];
        const word = head?.k === 'ident' ? head.v : undefined;
        if (word === 'end' || word === 'else') {
          if (!stopAt.includes(word)) this.#fail(it.pos, `unexpected {{${word}}}`);
          return { nodes, stop: word, rest: toks.slice(1), pos: it.pos };
        }
        if (word === 'if' || word === 'with' || word === 'range') {
          const pipe = this.#pipe(toks.slice(1), it.pos, word === 'range' ? 2 : 1);
          nodes.push(control(word, pipe));
          continue;
        }
        if (word === 'break' || word === 'continue') {
          nodes.push({ t: word });
          continue;
        }
        if (toks.length === 0) this.#fail(it.pos, 'missing value for command');
        nodes.push({ t: 'action', pipe: this.#pipe(toks, it.pos, 2) });
      }
      if (stopAt.length > 0) this.#fail(this.#src.length, 'unexpected EOF');
      return { nodes };
    };
    const control = (word: 'if' | 'with' | 'range', pipe: Pipe): Node => {
      const body = block(['end', 'else']);
      const node: ControlNode = { t: word, pipe, body: body.nodes };
      if (body.stop === 'else') {
        if (body.rest && body.rest.length > 0) {
          // `else if …` / `else with …` nest a new control inside the else branch.
          const w = body.rest[0]!;
          if (w.k !== 'ident' || (w.v !== 'if' && w.v !== 'with')) this.#fail(body.pos!, 'unexpected tokens after else');
          const inner = control(w.v as 'if' | 'with', this.#pipe(body.rest.slice(1), body.pos!, 1));
          node.else = [inner];
          return node;
        }
        const elseBody = block(['end']);
        node.else = elseBody.nodes;
      }
      return node;
    };
    return block([]).nodes;
  }

  #findClose(from: number): number {
    const s = this.#src;
    let q: string | undefined;
    for (let i = from; i < s.length; i++) {
      const c = s[i]!;
      if (q) {
        if (c === '\\' && q === '"') i++;
        else if (c === q) q = undefined;
        continue;
      }
      if (c === '"' || c === '`') q = c;
      else if (c === '/' && s[i + 1] === '*') {
        const end = s.indexOf('*/', i + 2);
        if (end < 0) break;
        i = end + 1;
      } else if (c === '}' && s[i + 1] === '}') return i;
    }
    this.#fail(from, 'unclosed action');
  }

  #lex(text: string, base: number): Tok[] {
    const toks: Tok[] = [];
    let i = 0;
    const ident = /[A-Za-z_][A-Za-z0-9_]*/y;
    while (i < text.length) {
      const c = text[i]!;
      const pos = base + i;
      if (/\s/.test(c)) {
        i++;
        continue;
      }
      if (c === '(' || c === ')' || c === '|' || c === ',') {
        toks.push({ k: 'op', v: c, pos });
        i++;
        continue;
      }
      if (c === ':' && text[i + 1] === '=') {
        toks.push({ k: 'op', v: ':=', pos });
        i += 2;
        continue;
      }
      if (c === '=') {
        toks.push({ k: 'op', v: '=', pos });
        i++;
        continue;
      }
      if (c === '"') {
        let j = i + 1;
        while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
        if (j >= text.length) this.#fail(pos, 'unterminated quoted string');
        let v: string;
        try {
          v = JSON.parse(text.slice(i, j + 1)) as string;
        } catch {
          this.#fail(pos, `invalid syntax: ${text.slice(i, j + 1)}`);
        }
        toks.push({ k: 'str', v, pos });
        i = j + 1;
        continue;
      }
      if (c === '`') {
        const j = text.indexOf('`', i + 1);
        if (j < 0) this.#fail(pos, 'unterminated raw quoted string');
        toks.push({ k: 'str', v: text.slice(i + 1, j), pos });
        i = j + 1;
        continue;
      }
      if (c === '.' || c === '$') {
        const m = /^(\$[A-Za-z0-9_]*|\.[A-Za-z_][A-Za-z0-9_]*|\.)((?:\.[A-Za-z_][A-Za-z0-9_]*)*)/.exec(text.slice(i))!;
        if (c === '.' && /^\.[0-9]/.test(text.slice(i))) {
          // a number like .5
        } else {
          toks.push({ k: c === '$' ? 'var' : 'field', v: m[0], pos });
          i += m[0].length;
          continue;
        }
      }
      const num = /^[-+]?(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)/.exec(text.slice(i));
      if (num) {
        toks.push({ k: 'num', v: Number(num[0]), pos });
        i += num[0].length;
        continue;
      }
      ident.lastIndex = i;
      const id = ident.exec(text);
      if (id) {
        toks.push({ k: 'ident', v: id[0], pos });
        i += id[0].length;
        // A field chain on a parenthesised value or function result is not supported on identifiers.
        continue;
      }
      this.#fail(pos, `unexpected ${JSON.stringify(c)} in command`);
    }
    return toks;
  }

  /** A pipeline from tokens; `maxDecl` variables may be declared (`range` takes two). */
  #pipe(toks: Tok[], pos: number, maxDecl: number): Pipe {
    let rest = toks;
    const decl: string[] = [];
    const assignAt = toks.findIndex((t) => t.k === 'op' && (t.v === ':=' || t.v === '='));
    if (assignAt > 0 && toks.slice(0, assignAt).every((t) => t.k === 'var' || (t.k === 'op' && t.v === ','))) {
      for (const t of toks.slice(0, assignAt)) if (t.k === 'var') decl.push(t.v);
      if (decl.length > maxDecl) this.#fail(pos, 'too many declarations');
      rest = toks.slice(assignAt + 1);
    }
    const [p, end] = this.#parsePipe(rest, 0, pos);
    if (end !== rest.length) this.#fail(rest[end]!.pos, `unexpected ${JSON.stringify(String((rest[end] as { v: unknown }).v))} in operand`);
    return { ...p, decl };
  }

  #parsePipe(toks: Tok[], i: number, pos: number): [Pipe, number] {
    const cmds: Arg[][] = [];
    let cmd: Arg[] = [];
    while (i < toks.length) {
      const t = toks[i]!;
      if (t.k === 'op' && t.v === ')') break;
      if (t.k === 'op' && t.v === '|') {
        if (cmd.length === 0) this.#fail(t.pos, 'missing command');
        cmds.push(cmd);
        cmd = [];
        i++;
        continue;
      }
      if (t.k === 'op' && t.v === '(') {
        const [inner, end] = this.#parsePipe(toks, i + 1, t.pos);
        if (toks[end]?.k !== 'op' || (toks[end] as { v: string }).v !== ')') this.#fail(t.pos, 'unclosed left paren');
        i = end + 1;
        const chain: string[] = [];
        // `(…).Field` chains
        while (i < toks.length && toks[i]!.k === 'field' && toks[i]!.pos === (toks[i - 1]!.pos + 1)) {
          chain.push(...(toks[i] as { v: string }).v.slice(1).split('.'));
          i++;
        }
        cmd.push({ k: 'pipe', pipe: { ...inner, decl: [] }, chain, pos: t.pos });
        continue;
      }
      cmd.push(this.#operand(t));
      i++;
    }
    if (cmd.length > 0) cmds.push(cmd);
    if (cmds.length === 0) this.#fail(pos, 'missing value for command');
    return [{ decl: [], cmds, pos }, i];
  }

  #operand(t: Tok): Arg {
    switch (t.k) {
      case 'field':
        return { k: 'field', base: 'dot', chain: t.v === '.' ? [] : t.v.slice(1).split('.'), pos: t.pos, src: t.v };
      case 'var': {
        const [name, ...chain] = t.v.split('.');
        return { k: 'field', base: 'var', name: name!, chain, pos: t.pos, src: t.v };
      }
      case 'str':
      case 'num':
        return { k: 'lit', v: t.v, pos: t.pos };
      case 'ident':
        if (t.v === 'true' || t.v === 'false') return { k: 'lit', v: t.v === 'true', pos: t.pos };
        if (t.v === 'nil') return { k: 'lit', v: null, pos: t.pos };
        return { k: 'fn', name: t.v, pos: t.pos };
      default:
        this.#fail(t.pos, `unexpected ${JSON.stringify(t.v)} in operand`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// execution

/** Go's idea of a missing value (a map lookup that found nothing). */
const MISSING = undefined;

class Flow {
  constructor(readonly kind: 'break' | 'continue') {}
}

class Executor {
  readonly #src: string;
  readonly #funcs: Readonly<Record<string, TemplateFunc>>;
  readonly #root: unknown;
  #vars: Array<Map<string, unknown>> = [];

  constructor(src: string, funcs: Readonly<Record<string, TemplateFunc>>, root: unknown) {
    this.#src = src;
    this.#funcs = funcs;
    this.#root = root;
  }

  run(nodes: Node[], dot: unknown): string {
    this.#vars = [new Map([['$', this.#root]])];
    return this.#nodes(nodes, dot);
  }

  #fail(pos: number, at: string, msg: string): never {
    const before = this.#src.slice(0, pos);
    const col = pos - (before.lastIndexOf('\n') + 1);
    throw new TemplateError(`template: :${lineOf(this.#src, pos)}:${col}: executing "" at <${at}>: ${msg}`);
  }

  #nodes(nodes: Node[], dot: unknown): string {
    let out = '';
    for (const n of nodes) {
      switch (n.t) {
        case 'text':
          out += n.text;
          break;
        case 'action': {
          const v = this.#pipe(n.pipe, dot);
          if (n.pipe.decl.length === 0) out += printValue(v);
          break;
        }
        case 'if':
        case 'with': {
          this.#vars.push(new Map());
          try {
            const v = this.#pipe(n.pipe, dot);
            if (truth(v)) out += this.#nodes(n.body, n.t === 'with' ? v : dot);
            else if (n.else) out += this.#nodes(n.else, dot);
          } finally {
            this.#vars.pop();
          }
          break;
        }
        case 'range':
          out += this.#range(n, dot);
          break;
        case 'break':
        case 'continue':
          throw Object.assign(new Flow(n.t), { out });
      }
    }
    return out;
  }

  #range(n: ControlNode, dot: unknown): string {
    const decl = n.pipe.decl;
    const v = this.#pipe({ ...n.pipe, decl: [] }, dot);
    let entries: Array<[unknown, unknown]>;
    if (v === null || v === undefined) entries = [];
    else if (Array.isArray(v)) entries = v.map((e, i) => [i, e]);
    else if (typeof v === 'number' && Number.isInteger(v)) entries = Array.from({ length: Math.max(0, v) }, (_, i) => [i, i]);
    else if (typeof v === 'object') entries = Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]);
    else this.#fail(n.pipe.pos, 'range', `range can't iterate over ${printValue(v)}`);
    if (entries.length === 0) return n.else ? this.#nodes(n.else, dot) : '';
    let out = '';
    for (const [key, elem] of entries) {
      const scope = new Map<string, unknown>();
      if (decl.length === 1) scope.set(decl[0]!, elem);
      if (decl.length === 2) {
        scope.set(decl[0]!, key);
        scope.set(decl[1]!, elem);
      }
      this.#vars.push(scope);
      try {
        out += this.#nodes(n.body, elem);
      } catch (err) {
        if (!(err instanceof Flow)) throw err;
        out += (err as Flow & { out: string }).out;
        if (err.kind === 'break') break;
      } finally {
        this.#vars.pop();
      }
    }
    return out;
  }

  #lookupVar(name: string, pos: number): unknown {
    for (let i = this.#vars.length - 1; i >= 0; i--) if (this.#vars[i]!.has(name)) return this.#vars[i]!.get(name);
    this.#fail(pos, name, `undefined variable: ${name}`);
  }

  #pipe(p: Pipe, dot: unknown): unknown {
    let value: unknown;
    let first = true;
    for (const cmd of p.cmds) {
      value = this.#cmd(cmd, dot, first ? [] : [value]);
      first = false;
    }
    if (p.decl.length > 0) {
      const name = p.decl[0]!;
      // An existing variable is updated where it lives; a new one belongs to this scope.
      const scope = [...this.#vars].reverse().find((s) => s.has(name)) ?? this.#vars.at(-1)!;
      scope.set(name, value);
    }
    return value;
  }

  #cmd(cmd: Arg[], dot: unknown, final: unknown[]): unknown {
    const head = cmd[0]!;
    if (head.k === 'fn') {
      const fn = this.#funcs[head.name];
      if (!fn) throw new TemplateError(`template: :${lineOf(this.#src, head.pos)}: function "${head.name}" not defined`);
      const args = [...cmd.slice(1).map((a) => this.#arg(a, dot)), ...final];
      if (head.name === 'and' || head.name === 'or') return fn(...args);
      try {
        return fn(...args);
      } catch (err) {
        this.#fail(head.pos, head.name, `error calling ${head.name}: ${(err as Error).message}`);
      }
    }
    if (cmd.length > 1 || final.length > 0) {
      const at = head.k === 'field' ? head.src : 'value';
      this.#fail(head.pos, at, `can't give argument to non-function ${at}`);
    }
    return this.#arg(head, dot);
  }

  #arg(a: Arg, dot: unknown): unknown {
    switch (a.k) {
      case 'lit':
        return a.v;
      case 'fn':
        return this.#cmd([a], dot, []);
      case 'pipe':
        return this.#chain(this.#pipe(a.pipe, dot), a.chain, a.pos, '(…)');
      case 'field': {
        const base = a.base === 'dot' ? dot : this.#lookupVar(a.name!, a.pos);
        return this.#chain(base, a.chain, a.pos, a.src);
      }
    }
  }

  #chain(value: unknown, chain: readonly string[], pos: number, src: string): unknown {
    let v = value;
    for (const name of chain) {
      const typeName = strictName(v);
      if (v === null || v === undefined) this.#fail(pos, src, `nil pointer evaluating interface {}.${name}`);
      if (typeof v !== 'object' || Array.isArray(v)) {
        this.#fail(pos, src, `can't evaluate field ${name} in type ${goTypeName(v)}`);
      }
      if (!Object.hasOwn(v, name)) {
        if (typeName) this.#fail(pos, src, `can't evaluate field ${name} in type ${typeName}`);
        v = MISSING;
        continue;
      }
      v = (v as Record<string, unknown>)[name];
    }
    return v;
  }
}

function goTypeName(v: unknown): string {
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float64';
  if (typeof v === 'boolean') return 'bool';
  if (Array.isArray(v)) return '[]interface {}';
  return 'interface {}';
}

/** Go's template truth: false, 0, "", nil and empty lists/maps are false. */
export function truth(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0 || strictName(v) !== undefined;
  return true;
}

/** A value as Go's fmt `%v` prints it. */
export function printValue(v: unknown): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return `[${v.map(inner).join(' ')}]`;
  if (typeof v === 'object') {
    const keys = Object.keys(v).sort();
    if (strictName(v)) return `{${keys.map((k) => inner((v as Record<string, unknown>)[k])).join(' ')}}`;
    return `map[${keys.map((k) => `${k}:${inner((v as Record<string, unknown>)[k])}`).join(' ')}]`;
  }
  return String(v);
}

function inner(v: unknown): string {
  return v === undefined || v === null ? '<nil>' : printValue(v);
}

// ---------------------------------------------------------------------------------------------
// functions

function asString(v: unknown, fn: string): string {
  if (typeof v === 'string') return v;
  if (v === undefined || v === null) return '';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new TemplateError(`wrong type for value; expected string; got ${goTypeName(v)} (in ${fn})`);
}

function compare(a: unknown, b: unknown, fn: string): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  throw new TemplateError(`incompatible types for comparison (in ${fn})`);
}

function eqOne(a: unknown, b: unknown): boolean {
  if (a === undefined) a = null;
  if (b === undefined) b = null;
  if (typeof a === 'object' && a !== null) throw new TemplateError('invalid type for comparison');
  return a === b;
}

/** Go's fmt.Sprintf for the verbs templates use: %s %v %d %q %t %x %f %%, with width/flags. */
export function sprintf(format: string, ...args: unknown[]): string {
  let n = 0;
  return format.replace(/%([-+# 0]*)(\d+)?(?:\.(\d+))?([svdqtxXf%])/g, (_m, flags: string, width?: string, prec?: string, verb?: string) => {
    if (verb === '%') return '%';
    if (n >= args.length) return `%!${verb}(MISSING)`;
    const a = args[n++];
    let s: string;
    switch (verb) {
      case 'd':
        s = typeof a === 'number' ? String(Math.trunc(a)) : `%!d(${goTypeName(a)}=${printValue(a)})`;
        break;
      case 'q':
        s = JSON.stringify(printValue(a));
        break;
      case 'x':
      case 'X':
        s = typeof a === 'number' ? Math.trunc(a).toString(16) : Buffer.from(printValue(a)).toString('hex');
        if (verb === 'X') s = s.toUpperCase();
        break;
      case 'f':
        s = typeof a === 'number' ? a.toFixed(prec === undefined ? 6 : Number(prec)) : `%!f(${goTypeName(a)}=${printValue(a)})`;
        break;
      case 't':
        s = typeof a === 'boolean' ? String(a) : `%!t(${goTypeName(a)}=${printValue(a)})`;
        break;
      default:
        s = printValue(a);
        if (prec !== undefined && verb === 's') s = [...s].slice(0, Number(prec)).join('');
    }
    const w = width === undefined ? 0 : Number(width);
    if ([...s].length < w) {
      const pad = (flags.includes('0') && !flags.includes('-') ? '0' : ' ').repeat(w - [...s].length);
      s = flags.includes('-') ? s + pad : pad + s;
    }
    return s;
  }) + (n < args.length ? `%!(EXTRA ${args.slice(n).map((a) => `${goTypeName(a)}=${printValue(a)}`).join(', ')})` : '');
}

/** Go's fmt.Sprint: spaces only between operands when neither is a string. */
function sprint(args: unknown[]): string {
  let out = '';
  args.forEach((a, i) => {
    if (i > 0 && typeof a !== 'string' && typeof args[i - 1] !== 'string') out += ' ';
    out += printValue(a);
  });
  return out;
}

/** JSON as docker's `json` template function writes it (Encoder without HTML escaping). */
function jsonFunc(v: unknown): string {
  if (v === undefined) return 'null';
  // docker's formatter contexts marshal themselves with json.Marshal, which escapes HTML.
  return goJson(v, { escapeHTML: strictName(v) !== undefined });
}

export const FUNCS: Readonly<Record<string, TemplateFunc>> = {
  json: (v) => jsonFunc(v),
  join: (list, sep) => {
    if (!Array.isArray(list)) throw new TemplateError(`wrong type for value; expected []string; got ${goTypeName(list)}`);
    return list.map((x) => printValue(x)).join(asString(sep, 'join'));
  },
  split: (s, sep) => asString(s, 'split').split(asString(sep, 'split')),
  lower: (s) => asString(s, 'lower').toLowerCase(),
  upper: (s) => asString(s, 'upper').toUpperCase(),
  title: (s) => asString(s, 'title').replace(/(^|[^\p{L}\p{N}_'])(\p{L})/gu, (_m, a: string, b: string) => a + b.toUpperCase()),
  pad: (s, before, after) => ' '.repeat(Number(before) || 0) + asString(s, 'pad') + ' '.repeat(Number(after) || 0),
  truncate: (s, n) => {
    const chars = [...asString(s, 'truncate')];
    const len = Number(n);
    return chars.length <= len ? chars.join('') : chars.slice(0, len).join('');
  },
  index: (v, ...keys) => {
    let cur = v;
    for (const k of keys) {
      if (cur === null || cur === undefined) throw new TemplateError('index of untyped nil');
      if (Array.isArray(cur) || typeof cur === 'string') {
        if (typeof k !== 'number' || !Number.isInteger(k)) throw new TemplateError('cannot index slice/array with type string');
        if (k < 0 || k >= cur.length) throw new TemplateError(`index out of range: ${k}`);
        cur = Array.isArray(cur) ? cur[k] : cur.charCodeAt(k);
      } else if (typeof cur === 'object') {
        const key = String(k);
        cur = Object.hasOwn(cur, key) ? (cur as Record<string, unknown>)[key] : MISSING;
      } else {
        throw new TemplateError(`can't index item of type ${goTypeName(cur)}`);
      }
    }
    return cur;
  },
  len: (v) => {
    if (typeof v === 'string') return Buffer.byteLength(v);
    if (Array.isArray(v)) return v.length;
    if (typeof v === 'object' && v !== null) return Object.keys(v).length;
    throw new TemplateError(`len of type ${goTypeName(v)}`);
  },
  print: (...args) => sprint(args),
  printf: (format, ...args) => sprintf(asString(format, 'printf'), ...args),
  println: (...args) => args.map((a) => printValue(a)).join(' ') + '\n',
  eq: (a, ...bs) => {
    if (bs.length === 0) throw new TemplateError('missing argument for comparison');
    return bs.some((b) => eqOne(a, b));
  },
  ne: (a, b) => !eqOne(a, b),
  lt: (a, b) => compare(a, b, 'lt') < 0,
  le: (a, b) => compare(a, b, 'le') <= 0,
  gt: (a, b) => compare(a, b, 'gt') > 0,
  ge: (a, b) => compare(a, b, 'ge') >= 0,
  and: (...args) => {
    for (const a of args) if (!truth(a)) return a;
    return args.at(-1);
  },
  or: (...args) => {
    for (const a of args) if (truth(a)) return a;
    return args.at(-1);
  },
  not: (a) => !truth(a),
};

/**
 * docker's header functions: in a table's header row the formatting functions pass their
 * argument (the header name) through unchanged.
 */
export const HEADER_FUNCS: Readonly<Record<string, TemplateFunc>> = {
  json: (v) => (typeof v === 'string' ? v : ''),
  split: (v) => v,
  join: (v) => v,
  title: (v) => v,
  lower: (v) => v,
  upper: (v) => v,
  pad: (v) => v,
  truncate: (v) => v,
};
