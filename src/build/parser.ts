/**
 * Dockerfile parsing, stage one: text → instruction nodes, with the line rules of Docker
 * 20.10's classic builder (the parser it vendors from BuildKit v0.8):
 *
 *  - parser directives (`# escape=…`, `# syntax=…`) only before anything else: the first
 *    line that is not a directive (a blank line, a plain comment, an instruction) ends them;
 *    an unknown `# key=value` is just a comment;
 *  - `#` starts a comment only at the start of a line (after indentation);
 *  - the escape character at the end of a line continues it; comment lines and blank lines
 *    inside a continuation are skipped (blank ones with a warning, as Docker warns);
 *  - keywords are case-insensitive, `--flag` words right after the keyword are split off;
 *  - arguments are split per keyword: JSON-or-shell (RUN CMD ENTRYPOINT SHELL), JSON-or-words
 *    (ADD COPY VOLUME), key=value words (ENV LABEL ARG), whitespace words (FROM EXPOSE), the
 *    rest of the line (USER WORKDIR STOPSIGNAL MAINTAINER), ONBUILD wrapping a sub-line.
 *
 * Quotes and escapes inside words are kept here and processed later by shell-words.ts, when
 * variables are substituted; like Docker, parsing never looks at variables.
 *
 * Heredocs (`RUN <<EOF`) are a BuildKit feature the classic builder never had; Docker 20.10
 * reads `<<EOF` as shell text and then fails on the next line ("unknown instruction"). strata
 * refuses them up front with a message that says what is going on.
 */
import { InvalidArgumentError } from '../errors.js';
import { goQuote } from './go-format.js';

/** A parse failure. `line` is the 1-based line where the offending instruction starts. */
export class DockerfileParseError extends InvalidArgumentError {
  readonly line: number | undefined;
  constructor(message: string, line?: number) {
    super(message);
    this.line = line;
  }
}

export interface ParsedNode {
  /** Lower-case keyword as written (`from`, `run`, or anything unknown). */
  keyword: string;
  /** The logical line: continuations joined, leading whitespace of the first line removed. */
  original: string;
  /** `--name=value` words that followed the keyword, verbatim. */
  flags: string[];
  /** Arguments as the keyword's line parser split them (quotes still in place). */
  args: string[];
  /** The arguments were a JSON array (exec form). */
  json: boolean;
  /** For ONBUILD: the wrapped instruction. */
  child?: ParsedNode;
  startLine: number;
  endLine: number;
}

export interface ParseResult {
  nodes: ParsedNode[];
  /** `\` or `` ` ``. */
  escapeToken: string;
  /** Value of a `# syntax=` directive (recorded, not acted on: there is no frontend). */
  syntax?: string;
  /** Docker's parser warnings (empty continuation lines), printed before the build. */
  warnings: string[];
}

export interface ParseOptions {
  /** The Dockerfile's name as given with -f, used in messages. Default `Dockerfile`. */
  name?: string;
}

/** Go's bufio.Scanner default token limit, which Docker never raises. */
const MAX_LINE = 64 * 1024 - 1;
const WHITESPACE_RUN = /[\t\v\f\r ]+/;
const DIRECTIVE = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;
const VALID_DIRECTIVES = new Set(['escape', 'syntax']);

class Directives {
  escapeToken = '\\';
  continuation!: RegExp;
  done = false;
  readonly seen = new Set<string>();
  syntax: string | undefined;

  constructor() {
    this.setEscapeToken('\\');
  }

  setEscapeToken(s: string): void {
    if (s !== '`' && s !== '\\') throw new Error(`invalid escape token '${s}' does not match \` or \\`);
    this.escapeToken = s;
    const e = s === '\\' ? '\\\\' : s;
    // The escape char ends a line when it is the last non-blank char and is not itself
    // escaped; a line holding only the escape char continues too.
    this.continuation = new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
  }

  /** Looks at a line while directives are still allowed. */
  consider(line: string): void {
    if (this.done) return;
    const m = DIRECTIVE.exec(line);
    if (!m) {
      this.done = true;
      return;
    }
    const key = m[1]!.toLowerCase();
    if (!VALID_DIRECTIVES.has(key)) {
      this.done = true;
      return;
    }
    if (this.seen.has(key)) throw new Error(`only one ${key} parser directive can be used`);
    this.seen.add(key);
    if (key === 'escape') this.setEscapeToken(m[2]!);
    else this.syntax = m[2]!;
  }
}

function trimLeftSpace(s: string): string {
  return s.replace(/^\s+/u, '');
}

function isComment(line: string): boolean {
  return trimLeftSpace(line).startsWith('#');
}

/** Docker strips a comment only when the whole (already left-trimmed) line is one. */
function stripComment(line: string): string {
  return line.startsWith('#') ? '' : line;
}

function trimContinuation(line: string, d: Directives): { line: string; end: boolean } {
  if (d.continuation.test(line)) return { line: line.replace(d.continuation, '$1'), end: false };
  return { line, end: true };
}

/**
 * Parses Dockerfile text into nodes. Throws DockerfileParseError with Docker's messages
 * (`failed to parse Dockerfile: …` for line-level problems, `the Dockerfile (Dockerfile)
 * cannot be empty`).
 */
export function parseDockerfile(text: string, options: ParseOptions = {}): ParseResult {
  const name = options.name ?? 'Dockerfile';
  if (text.length === 0) throw new DockerfileParseError(`the Dockerfile (${name}) cannot be empty`);
  const failed = (err: unknown, line: number): DockerfileParseError => {
    if (err instanceof DockerfileParseError) return err;
    return new DockerfileParseError(`failed to parse ${name}: ${(err as Error).message}`, line);
  };

  // bufio.ScanLines: split on \n, drop one trailing \r; a final empty line is not a line.
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.endsWith('\r')) lines[i] = lines[i]!.slice(0, -1);
    if (Buffer.byteLength(lines[i]!) > MAX_LINE) {
      throw failed(new Error(`dockerfile line greater than max allowed size of ${MAX_LINE}`), i + 1);
    }
  }
  if (lines.length > 0 && lines[0]!.startsWith('\ufeff')) lines[0] = lines[0]!.slice(1);

  const d = new Directives();
  const nodes: ParsedNode[] = [];
  const warnings: string[] = [];
  let current = 0;
  let i = 0;
  while (i < lines.length) {
    const raw = trimLeftSpace(lines[i++]!);
    try {
      d.consider(raw);
    } catch (err) {
      throw failed(err, current);
    }
    current++;
    const startLine = current;
    let { line, end } = trimContinuation(stripComment(raw), d);
    if (end && line === '') continue;

    let emptyContinuation = false;
    while (!end && i < lines.length) {
      const next = lines[i++]!;
      try {
        d.consider(next);
      } catch (err) {
        throw failed(err, current);
      }
      current++;
      if (isComment(next)) continue;
      const body = stripComment(next);
      if (trimLeftSpace(body) === '') {
        emptyContinuation = true;
        continue;
      }
      const t = trimContinuation(body, d);
      line += t.line;
      end = t.end;
    }
    if (emptyContinuation) warnings.push('[WARNING]: Empty continuation line found in:\n    ' + line);

    try {
      nodes.push(nodeFromLine(line, d, startLine, current));
    } catch (err) {
      throw failed(err, startLine);
    }
  }
  if (warnings.length > 0) warnings.push('[WARNING]: Empty continuation lines will become errors in a future release.');
  if (nodes.length === 0) throw failed(new Error('file with no instructions'), current);
  const result: ParseResult = { nodes, escapeToken: d.escapeToken, warnings };
  if (d.syntax !== undefined) result.syntax = d.syntax;
  return result;
}

type LineParser = (rest: string, d: Directives) => { args: string[]; json: boolean; child?: ParsedNode };

const LINE_PARSERS: Record<string, LineParser> = {
  add: maybeJsonToList,
  arg: (rest, d) => ({ args: parseWords(rest, d), json: false }),
  cmd: maybeJson,
  copy: maybeJsonToList,
  entrypoint: maybeJson,
  env: (rest, d) => ({ args: parseNameVal(rest, 'ENV', d), json: false }),
  expose: whitespaceWords,
  from: whitespaceWords,
  healthcheck: parseHealthcheckLine,
  label: (rest, d) => ({ args: parseNameVal(rest, 'LABEL', d), json: false }),
  maintainer: restOfLine,
  onbuild: (rest, d) => {
    if (rest === '') return { args: [], json: false };
    const child = nodeFromLine(rest, d, 0, 0);
    return { args: [], json: false, child };
  },
  run: maybeJson,
  shell: maybeJson,
  stopsignal: restOfLine,
  user: restOfLine,
  volume: maybeJsonToList,
  workdir: restOfLine,
};

function nodeFromLine(line: string, d: Directives, startLine: number, endLine: number): ParsedNode {
  const trimmed = line.trim();
  const m = WHITESPACE_RUN.exec(trimmed);
  const keyword = (m ? trimmed.slice(0, m.index) : trimmed).toLowerCase();
  let rest = '';
  let flags: string[] = [];
  if (m) {
    const split = extractFlags(trimmed.slice(m.index + m[0].length));
    rest = split.rest.trim();
    flags = split.flags;
  }
  const parser = LINE_PARSERS[keyword];
  const parsed = parser ? parser(rest, d) : { args: [], json: false };
  if (keyword === 'run' || keyword === 'copy' || keyword === 'add') refuseHeredoc(keyword, parsed.args, parsed.json);
  const node: ParsedNode = { keyword, original: line, flags, args: parsed.args, json: parsed.json, startLine, endLine };
  if (parsed.child) {
    parsed.child.startLine = startLine;
    parsed.child.endLine = endLine;
    node.child = parsed.child;
  }
  return node;
}

/** `<<EOF`, `<<-EOF`, `<<"EOF"` at the start of a shell word (a here-string `<<<` is fine). */
const HEREDOC = /(?:^|\s)<<-?(["']?)[A-Za-z_][A-Za-z0-9_]*\1(?:\s|$)/;

function refuseHeredoc(keyword: string, args: string[], json: boolean): void {
  if (json) return;
  if (args.some((a) => HEREDOC.test(a))) {
    throw new Error(`heredocs are not supported by the classic builder: ${keyword.toUpperCase()} ${args.join(' ')}`);
  }
}

/** Splits leading `--flag` words (BuildKit's extractBuilderFlags: quotes and `\` handled). */
function extractFlags(line: string): { rest: string; flags: string[] } {
  const words: string[] = [];
  const IN_SPACES = 0, IN_WORD = 1, IN_QUOTE = 2;
  let phase = IN_SPACES;
  let word = '';
  let quote = '';
  let blankOK = false;
  for (let pos = 0; pos <= line.length; pos++) {
    let ch = pos < line.length ? line[pos]! : '';
    if (phase === IN_SPACES) {
      if (pos === line.length) break;
      if (/\s/u.test(ch)) continue;
      if (ch !== '-' || pos + 1 === line.length || line[pos + 1] !== '-') return { rest: line.slice(pos), flags: words };
      phase = IN_WORD;
    }
    if ((phase === IN_WORD || phase === IN_QUOTE) && pos === line.length) {
      if (word !== '--' && (blankOK || word.length > 0)) words.push(word);
      break;
    }
    if (phase === IN_WORD) {
      if (/\s/u.test(ch)) {
        phase = IN_SPACES;
        if (word === '--') return { rest: line.slice(pos), flags: words };
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = IN_QUOTE;
        continue;
      }
      if (ch === '\\') {
        if (pos + 1 === line.length) continue;
        pos++;
        ch = line[pos]!;
      }
      word += ch;
      continue;
    }
    if (ch === quote) {
      phase = IN_WORD;
      continue;
    }
    if (ch === '\\') {
      if (pos + 1 === line.length) {
        phase = IN_WORD;
        continue;
      }
      pos++;
      ch = line[pos]!;
    }
    word += ch;
  }
  return { rest: '', flags: words };
}

/**
 * Splits on unquoted whitespace, keeping quotes and escapes in the words (BuildKit's
 * parseWords): they are interpreted later, during variable substitution.
 */
export function parseWords(rest: string, d: { escapeToken: string }): string[] {
  const words: string[] = [];
  const chars = Array.from(rest);
  const IN_SPACES = 0, IN_WORD = 1, IN_QUOTE = 2;
  let phase = IN_SPACES;
  let word = '';
  let quote = '';
  let blankOK = false;
  for (let pos = 0; pos <= chars.length; pos++) {
    let ch = pos < chars.length ? chars[pos]! : '';
    if (phase === IN_SPACES) {
      if (pos === chars.length) break;
      if (/\s/u.test(ch)) continue;
      phase = IN_WORD;
    }
    if ((phase === IN_WORD || phase === IN_QUOTE) && pos === chars.length) {
      if (blankOK || word.length > 0) words.push(word);
      break;
    }
    if (phase === IN_WORD) {
      if (/\s/u.test(ch)) {
        phase = IN_SPACES;
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = IN_QUOTE;
      }
      if (ch === d.escapeToken) {
        if (pos + 1 === chars.length) continue;
        // Unquoted: keep the escape and the escaped char, even a quote.
        word += ch;
        pos++;
        ch = chars[pos]!;
      }
      word += ch;
      continue;
    }
    if (ch === quote) phase = IN_WORD;
    if (ch === d.escapeToken && quote !== "'") {
      if (pos + 1 === chars.length) {
        phase = IN_WORD;
        continue;
      }
      pos++;
      word += ch;
      ch = chars[pos]!;
    }
    word += ch;
  }
  return words;
}

/** ENV / LABEL: `key value` (legacy, one pair) or `k=v k2=v2 …`. Returns [k, v, k, v, …]. */
function parseNameVal(rest: string, key: string, d: Directives): string[] {
  const words = parseWords(rest, d);
  if (words.length === 0) return [];
  if (!words[0]!.includes('=')) {
    const m = WHITESPACE_RUN.exec(rest);
    if (!m) throw new Error(`${key} must have two arguments`);
    return [rest.slice(0, m.index), rest.slice(m.index + m[0].length)];
  }
  const out: string[] = [];
  for (const word of words) {
    const eq = word.indexOf('=');
    if (eq < 0) throw new Error(`Syntax error - can't find = in ${goQuote(word)}. Must be of the form: name=value`);
    out.push(word.slice(0, eq), word.slice(eq + 1));
  }
  return out;
}

function whitespaceWords(rest: string): { args: string[]; json: boolean } {
  if (rest === '') return { args: [], json: false };
  return { args: rest.split(new RegExp(WHITESPACE_RUN.source)), json: false };
}

function restOfLine(rest: string): { args: string[]; json: boolean } {
  return { args: rest === '' ? [] : [rest], json: false };
}

const NOT_STRINGS = 'when using JSON array syntax, arrays must be comprised of strings only';

/**
 * Go's json.Decoder reads one value and ignores what follows, so `["a"] junk` is the
 * array ["a"]. Returns undefined when the text is not a JSON array at all.
 */
function parseJsonArray(rest: string): string[] | undefined {
  const s = trimLeftSpace(rest);
  if (!s.startsWith('[')) return undefined;
  const end = jsonValueEnd(s, 0);
  if (end < 0) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(s.slice(0, end));
  } catch {
    return undefined;
  }
  if (!Array.isArray(value)) return undefined;
  if (value.some((v) => typeof v !== 'string')) throw new Error(NOT_STRINGS);
  return value as string[];
}

/** Index just past the JSON value starting at `i` (brackets and strings balanced), or -1. */
function jsonValueEnd(s: string, i: number): number {
  let depth = 0;
  for (let p = i; p < s.length; p++) {
    const c = s[p];
    if (c === '"') {
      p++;
      while (p < s.length && s[p] !== '"') {
        if (s[p] === '\\') p++;
        p++;
      }
      if (p >= s.length) return -1;
    } else if (c === '[' || c === '{') depth++;
    else if (c === ']' || c === '}') {
      depth--;
      if (depth === 0) return p + 1;
    }
  }
  return -1;
}

function maybeJson(rest: string): { args: string[]; json: boolean } {
  if (rest === '') return { args: [], json: false };
  const arr = parseJsonArray(rest);
  if (arr) return { args: arr, json: true };
  return { args: [rest], json: false };
}

function maybeJsonToList(rest: string): { args: string[]; json: boolean } {
  const arr = parseJsonArray(rest);
  if (arr) return { args: arr, json: true };
  return whitespaceWords(rest);
}

/** HEALTHCHECK: the type word, then JSON-or-shell for the command. */
function parseHealthcheckLine(rest: string): { args: string[]; json: boolean } {
  const m = /\s/u.exec(rest);
  const sep = m ? m.index : rest.length;
  if (sep === 0) return { args: [], json: false };
  const typ = rest.slice(0, sep);
  const cmd = maybeJson(trimLeftSpace(rest.slice(sep)));
  return { args: [typ, ...cmd.args], json: cmd.json };
}
