/**
 * Docker's json-file log format: `<containerDir>/<id>-json.log`, one JSON object per line,
 *
 *   {"log":"hello\n","stream":"stdout","time":"2026-01-02T03:04:05.123456789Z"}
 *
 * The writer reproduces dockerd's byte-level choices so tools that parse Docker's logs (or
 * diff them) see the same thing: lines split at '\n' (the newline kept in "log"), lines
 * longer than 16 KiB cut into partial records, the remainder without '\n' flushed at close,
 * HTML-sensitive and control characters escaped as \u00XX, invalid UTF-8 as \ufffd, and
 * RFC 3339 times with nanoseconds and trailing zeros trimmed, as Go prints them.
 */
import { closeSync, openSync, writeSync, watch, type FSWatcher } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

import { isErrno } from '../errors.js';
import { formatTimestamp, nowNs } from '../sys/go-time.js';

export type LogStream = 'stdout' | 'stderr';

export interface LogEntry {
  log: string;
  stream: LogStream;
  /** RFC 3339 with up to nanosecond precision, UTC. */
  time: string;
}

/** dockerd's copier emits a partial record when a line reaches this size. */
export const MAX_LINE = 16 * 1024;

// ---- time --------------------------------------------------------------------------------

/** Parses an RFC 3339 time into nanoseconds since the epoch (for `--since`/`--until`). */
export function parseTimestampNs(time: string): bigint {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(time);
  if (!m) return BigInt(Date.parse(time)) * 1_000_000n;
  const seconds = BigInt(Date.parse(`${m[1]}${m[3]}`)) * 1_000_000n;
  return seconds + BigInt((m[2] ?? '').padEnd(9, '0') || '0');
}

// ---- encoding -----------------------------------------------------------------------------

const HEX = '0123456789abcdef';

/** A JSON string literal the way dockerd's json-file writer spells it. */
export function encodeLogString(s: string): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let esc: string | undefined;
    if (c === 0x22) esc = '\\"';
    else if (c === 0x5c) esc = '\\\\';
    else if (c === 0x0a) esc = '\\n';
    else if (c === 0x0d) esc = '\\r';
    else if (c < 0x20 || c === 0x3c || c === 0x3e || c === 0x26) esc = `\\u00${HEX[c >> 4]}${HEX[c & 15]}`;
    else if (c === 0x2028 || c === 0x2029 || c === 0xfffd) esc = `\\u${c.toString(16)}`;
    if (esc !== undefined) {
      out += s.slice(start, i) + esc;
      start = i + 1;
    }
  }
  return `${out}${s.slice(start)}"`;
}

export function encodeLogEntry(log: string, stream: LogStream, time: string): string {
  return `{"log":${encodeLogString(log)},"stream":"${stream}","time":"${time}"}\n`;
}

// ---- writer -----------------------------------------------------------------------------

/**
 * Appends records to a json-file log. Writes are synchronous: the log lives in the page cache,
 * each write is a few microseconds, and ordering between stdout and stderr records then
 * follows arrival order with no queue to drain before the exit is recorded.
 */
export class JsonLogWriter {
  #fd: number | undefined;
  readonly #pending: Record<LogStream, Buffer[]> = { stdout: [], stderr: [] };
  readonly #pendingLength: Record<LogStream, number> = { stdout: 0, stderr: 0 };

  constructor(file: string) {
    this.#fd = openSync(file, 'a', 0o640);
  }

  /** Feeds raw output bytes of one stream; complete lines become records at once. */
  write(stream: LogStream, chunk: Buffer): void {
    let out = '';
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, from);
      if (nl < 0) break;
      // Each record gets its own stamp, as dockerd stamps each line it copies.
      out += this.#record(stream, chunk.subarray(from, nl + 1), formatTimestamp(nowNs()));
      from = nl + 1;
    }
    if (from < chunk.length) {
      let rest = chunk.subarray(from);
      while (this.#pendingLength[stream] + rest.length >= MAX_LINE) {
        const take = MAX_LINE - this.#pendingLength[stream];
        out += this.#record(stream, rest.subarray(0, take), formatTimestamp(nowNs()));
        rest = rest.subarray(take);
      }
      if (rest.length > 0) {
        this.#pending[stream].push(Buffer.from(rest));
        this.#pendingLength[stream] += rest.length;
      }
    }
    if (out) this.#append(out);
  }

  /** Emits what is buffered for `stream` without a trailing newline (end of output). */
  flush(stream: LogStream): void {
    if (this.#pendingLength[stream] === 0) return;
    this.#append(this.#record(stream, Buffer.alloc(0), formatTimestamp(nowNs())));
  }

  close(): void {
    if (this.#fd === undefined) return;
    this.flush('stdout');
    this.flush('stderr');
    closeSync(this.#fd);
    this.#fd = undefined;
  }

  #record(stream: LogStream, tail: Buffer, time: string): string {
    let bytes = tail;
    if (this.#pendingLength[stream] > 0) {
      bytes = Buffer.concat([...this.#pending[stream], tail]);
      this.#pending[stream] = [];
      this.#pendingLength[stream] = 0;
    }
    return encodeLogEntry(bytes.toString('utf8'), stream, time);
  }

  #append(text: string): void {
    if (this.#fd === undefined) return;
    const buf = Buffer.from(text, 'utf8');
    let off = 0;
    while (off < buf.length) off += writeSync(this.#fd, buf, off);
  }
}

// ---- reader -------------------------------------------------------------------------------

export interface ReadLogOptions {
  /** Keep reading as the file grows (`logs -f`) until `signal` aborts; then drain and stop. */
  follow?: boolean;
  signal?: AbortSignal;
  /** Only the last N records (before following). */
  tail?: number;
  /** RFC 3339 bounds, inclusive of `since`, exclusive of `until`, as `docker logs`. */
  since?: string;
  until?: string;
}

function parseLine(line: string): LogEntry | undefined {
  if (line.trim() === '') return undefined;
  try {
    const v = JSON.parse(line) as Partial<LogEntry>;
    if (typeof v.log !== 'string' || (v.stream !== 'stdout' && v.stream !== 'stderr') || typeof v.time !== 'string') return undefined;
    return { log: v.log, stream: v.stream, time: v.time };
  } catch {
    // A torn last line (writer killed mid-write) is skipped, as dockerd's reader does.
    return undefined;
  }
}

/**
 * Reads a json-file log. Without `follow` it yields what is there and returns; with it, it
 * waits for growth (inotify, with a slow poll as a safety net) until `signal` aborts, then
 * reads once more so nothing written before the abort is missed. A missing file yields
 * nothing (a container that never started has no log).
 */
export async function* readLog(file: string, options: ReadLogOptions = {}): AsyncGenerator<LogEntry> {
  const since = options.since ? parseTimestampNs(options.since) : undefined;
  const until = options.until ? parseTimestampNs(options.until) : undefined;
  const keep = (e: LogEntry) => {
    if (since === undefined && until === undefined) return true;
    const t = parseTimestampNs(e.time);
    return (since === undefined || t >= since) && (until === undefined || t < until);
  };

  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return;
    throw err;
  }
  let watcher: FSWatcher | undefined;
  let wake: (() => void) | undefined;
  const onAbort = () => wake?.();
  try {
    let position = 0;
    let carry = '';
    const buf = Buffer.alloc(64 * 1024);
    // Reads what was appended since the last call; returns the complete lines.
    const readMore = async (): Promise<string[]> => {
      const lines: string[] = [];
      for (;;) {
        const { bytesRead } = await handle.read(buf, 0, buf.length, position);
        if (bytesRead === 0) break;
        position += bytesRead;
        const text = carry + buf.toString('utf8', 0, bytesRead);
        const parts = text.split('\n');
        carry = parts.pop()!;
        lines.push(...parts);
      }
      return lines;
    };

    let initial = (await readMore()).map(parseLine).filter((e): e is LogEntry => e !== undefined && keep(e));
    if (options.tail !== undefined && options.tail >= 0) initial = options.tail === 0 ? [] : initial.slice(-options.tail);
    yield* initial;
    if (!options.follow) return;

    const signal = options.signal;
    // `dirty` closes the gap between a read reaching EOF and the wait starting: a change
    // reported in between is not lost, it just skips the wait.
    let dirty = false;
    const poke = () => {
      dirty = true;
      wake?.();
    };
    signal?.addEventListener('abort', onAbort);
    watcher = watch(file, { persistent: false }, poke);
    watcher.on('error', poke);
    for (;;) {
      const stopping = signal?.aborted ?? false;
      dirty = false;
      for (const line of await readMore()) {
        const e = parseLine(line);
        if (e && keep(e)) yield e;
      }
      if (stopping) return;
      if (dirty || signal?.aborted) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, 1000);
        function done() {
          clearTimeout(timer);
          wake = undefined;
          resolve();
        }
        wake = done;
      });
    }
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    watcher?.close();
    await handle.close();
  }
}
