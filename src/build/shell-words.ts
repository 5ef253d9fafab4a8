/**
 * Variable substitution and word splitting for Dockerfile arguments, with the rules of the
 * classic builder's shell lexer (a small subset of POSIX sh):
 *
 *  - `$VAR` and `${VAR}`; names are letters, digits and `_`, or a run of digits, or one of
 *    the special parameters `@*#?-$!0` (which are looked up like any name, so usually empty);
 *  - `${VAR:-word}` word if VAR is unset or empty; `${VAR:+word}` word if VAR is set and
 *    non-empty; `${VAR:?msg}` / `${VAR?msg}` fail when unset (or empty, with the colon);
 *  - `${VAR-word}` / `${VAR+word}` (no colon: only "unset" counts). Docker 20.10 rejects
 *    these (`missing ':' in substitution`); later Docker accepts them, and so does strata;
 *  - single quotes keep everything literal; double quotes keep everything but `$`, and the
 *    escape char escapes only `"`, `$` and itself there; outside quotes the escape char
 *    (`\` or the `# escape=` one) makes the next char literal;
 *  - a `$` that starts no name stays a literal `$`.
 *
 * `processWord` returns the whole string with quotes removed and variables substituted;
 * `processWords` also splits it into words on unquoted whitespace (EXPOSE uses it, so
 * `EXPOSE $PORTS` can expand to several ports). Errors read like Docker's:
 * `failed to process "<word>": <reason>`.
 */
import { goQuote } from './go-format.js';

export type EnvLike = ReadonlyMap<string, string> | readonly string[];

const EOF = -1;

/** `K=V` strings → a map; later entries win; an entry without `=` is an empty value. */
export function buildEnvMap(env: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of env) {
    const i = e.indexOf('=');
    if (i < 0) m.set(e, '');
    else m.set(e.slice(0, i), e.slice(i + 1));
  }
  return m;
}

class Scanner {
  readonly #chars: string[];
  #pos = 0;
  constructor(s: string) {
    this.#chars = Array.from(s);
  }
  peek(): string | typeof EOF {
    return this.#pos < this.#chars.length ? this.#chars[this.#pos]! : EOF;
  }
  next(): string | typeof EOF {
    return this.#pos < this.#chars.length ? this.#chars[this.#pos++]! : EOF;
  }
}

class Words {
  word = '';
  words: string[] = [];
  inWord = false;

  addChar(ch: string): void {
    if (/\s/u.test(ch)) {
      if (this.inWord && this.word.length !== 0) {
        this.words.push(this.word);
        this.word = '';
        this.inWord = false;
      }
    } else this.addRawChar(ch);
  }

  addRawChar(ch: string): void {
    this.word += ch;
    this.inWord = true;
  }

  addString(s: string): void {
    for (const ch of s) this.addChar(ch);
  }

  addRawString(s: string): void {
    this.word += s;
    this.inWord = true;
  }

  get(): string[] {
    if (this.word.length > 0) {
      this.words.push(this.word);
      this.word = '';
      this.inWord = false;
    }
    return this.words;
  }
}

const SPECIAL_PARAMS = new Set(['@', '*', '#', '?', '-', '$', '!', '0']);

class ShellWord {
  readonly #sc: Scanner;
  readonly #env: ReadonlyMap<string, string>;
  readonly #escape: string;

  constructor(word: string, env: ReadonlyMap<string, string>, escape: string) {
    this.#sc = new Scanner(word);
    this.#env = env;
    this.#escape = escape;
  }

  process(stop: string | typeof EOF = EOF): { word: string; words: string[] } {
    let result = '';
    const words = new Words();
    for (;;) {
      const ch = this.#sc.peek();
      if (ch === EOF) break;
      if (stop !== EOF && ch === stop) {
        this.#sc.next();
        return { word: result, words: words.get() };
      }
      if (ch === "'" || ch === '"' || ch === '$') {
        const tmp = ch === "'" ? this.#singleQuote() : ch === '"' ? this.#doubleQuote() : this.#dollar();
        result += tmp;
        if (ch === '$') words.addString(tmp);
        else words.addRawString(tmp);
        continue;
      }
      let c = this.#sc.next() as string;
      if (c === this.#escape) {
        const n = this.#sc.next();
        if (n === EOF) break;
        c = n;
        words.addRawChar(c);
      } else {
        words.addChar(c);
      }
      result += c;
    }
    if (stop !== EOF) throw new Error(`unexpected end of statement while looking for matching ${stop}`);
    return { word: result, words: words.get() };
  }

  #singleQuote(): string {
    this.#sc.next();
    let out = '';
    for (;;) {
      const ch = this.#sc.next();
      if (ch === EOF) throw new Error('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") return out;
      out += ch;
    }
  }

  #doubleQuote(): string {
    this.#sc.next();
    let out = '';
    for (;;) {
      const p = this.#sc.peek();
      if (p === EOF) throw new Error('unexpected end of statement while looking for matching double-quote');
      if (p === '"') {
        this.#sc.next();
        return out;
      }
      if (p === '$') {
        out += this.#dollar();
        continue;
      }
      let ch = this.#sc.next() as string;
      if (ch === this.#escape) {
        const n = this.#sc.peek();
        if (n === EOF) continue;
        if (n === '"' || n === '$' || n === this.#escape) ch = this.#sc.next() as string;
      }
      out += ch;
    }
  }

  #lookup(name: string): string | undefined {
    return this.#env.get(name);
  }

  #dollar(): string {
    this.#sc.next();
    if (this.#sc.peek() !== '{') {
      const name = this.#name();
      if (name === '') return '$';
      return this.#lookup(name) ?? '';
    }
    this.#sc.next();
    const first = this.#sc.peek();
    if (first === EOF) throw new Error("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new Error('syntax error: bad substitution');
    const name = this.#name();
    const ch = this.#sc.next();
    if (ch === '}') return this.#lookup(name) ?? '';
    if (ch === '?' || ch === '-' || ch === '+') return this.#modifier(name, ch, false);
    if (ch === ':') {
      const modifier = this.#sc.next();
      return this.#modifier(name, modifier === EOF ? '' : modifier, true);
    }
    throw new Error("missing ':' in substitution");
  }

  #modifier(name: string, modifier: string, colon: boolean): string {
    let word: string;
    try {
      word = this.process('}').word;
    } catch (err) {
      if (this.#sc.peek() === EOF) throw new Error("syntax error: missing '}'");
      throw err;
    }
    const value = this.#lookup(name);
    const found = value !== undefined;
    const v = value ?? '';
    switch (modifier) {
      case '+':
        if (colon) return v !== '' ? word : v;
        return found ? word : '';
      case '-':
        if (colon) return v === '' ? word : v;
        return found ? v : word;
      case '?':
        if (!found) throw new Error(`${name}: ${word || 'is not allowed to be unset'}`);
        if (colon && v === '') throw new Error(`${name}: ${word || 'is not allowed to be empty'}`);
        return v;
      default:
        throw new Error(`unsupported modifier (${modifier}) in substitution`);
    }
  }

  #name(): string {
    let name = '';
    for (;;) {
      const ch = this.#sc.peek();
      if (ch === EOF) break;
      if (name.length === 0 && /^\p{Nd}$/u.test(ch)) {
        while (this.#sc.peek() !== EOF && /^\p{Nd}$/u.test(this.#sc.peek() as string)) name += this.#sc.next();
        return name;
      }
      if (name.length === 0 && SPECIAL_PARAMS.has(ch)) return this.#sc.next() as string;
      if (!/^[\p{L}\p{Nd}_]$/u.test(ch)) break;
      name += this.#sc.next();
    }
    return name;
  }
}

/** A lexer bound to the Dockerfile's escape token. */
export class ShellLex {
  readonly escapeToken: string;

  constructor(escapeToken = '\\') {
    this.escapeToken = escapeToken;
  }

  #run(word: string, env: EnvLike): { word: string; words: string[] } {
    const map = Array.isArray(env) ? buildEnvMap(env as readonly string[]) : (env as ReadonlyMap<string, string>);
    try {
      return new ShellWord(word, map, this.escapeToken).process();
    } catch (err) {
      throw new Error(`failed to process ${goQuote(word)}: ${(err as Error).message}`);
    }
  }

  /** Substitutes variables and removes quoting; whitespace is kept. */
  processWord(word: string, env: EnvLike): string {
    return this.#run(word, env).word;
  }

  /** Substitutes, then splits on unquoted whitespace. */
  processWords(word: string, env: EnvLike): string[] {
    return this.#run(word, env).words;
  }
}
