/**
 * Terminal progress bars in docker's jsonmessage style, one line per layer:
 * `26d3434f1086: Loading layer [=====>        ]  1.23MB/2.14MB`. Lines are redrawn in
 * place with ANSI cursor movement; used only when the stream is a terminal.
 */
import type { Writable } from 'node:stream';

import { humanSize } from './units.js';

/** docker's JSONProgress.String() for a terminal at least 110 columns wide. */
export function progressBar(current: number, total: number, width: number): string {
  if (current <= 0 && total <= 0) return '';
  if (total <= 0) return humanSize(current).padStart(8);
  let box = '';
  if (width > 110) {
    const pct = Math.min(50, Math.trunc(Math.trunc((current / total) * 100) / 2));
    box = `[${'='.repeat(pct)}>${' '.repeat(Math.max(0, 50 - pct))}] `;
  }
  const numbers = current > total ? humanSize(current).padStart(8) : `${humanSize(current).padStart(8)}/${humanSize(total)}`;
  return box + numbers;
}

export class ProgressLines {
  readonly #out: Writable & { columns?: number };
  readonly #ids: string[] = [];
  readonly #state = new Map<string, string>();
  #last = 0;

  constructor(out: Writable & { columns?: number }) {
    this.#out = out;
  }

  /** Updates the line of `id`; redraws at most every 100 ms unless `force`. */
  update(id: string, status: string, current: number, total: number, force = false): void {
    const line = `${id}: ${status} ${progressBar(current, total, this.#out.columns ?? 80)}`;
    if (!this.#state.has(id)) {
      this.#ids.push(id);
      this.#state.set(id, line);
      this.#out.write(`${line}\n`);
      return;
    }
    this.#state.set(id, line);
    const now = Date.now();
    if (!force && now - this.#last < 100) return;
    this.#last = now;
    const up = this.#ids.length - this.#ids.indexOf(id);
    this.#out.write(`\x1b[${up}A\r\x1b[2K${line}\x1b[${up}B\r`);
  }
}
