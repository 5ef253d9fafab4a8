/**
 * Go's text/tabwriter as docker configures it for tables (`NewWriter(out, 10, 1, 3, ' ', 0)`):
 * cells end at a tab, a column is as wide as its widest cell plus 3 (at least 10), the last
 * cell of a line is not part of any column, and a run of lines that share a column forms a
 * block aligned on its own (Go's column blocks). Widths count characters (runes).
 */

export interface TabwriterOptions {
  minWidth?: number;
  padding?: number;
}

interface Cell {
  text: string;
  width: number;
}

function runeCount(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** Aligns `text` (lines of tab-separated cells) and returns the formatted text. */
export function tabwrite(text: string, options: TabwriterOptions = {}): string {
  const minWidth = options.minWidth ?? 10;
  const padding = options.padding ?? 3;
  const lines: Cell[][] = text.split('\n').map((line) => line.split('\t').map((t) => ({ text: t, width: runeCount(t) })));
  const widths: number[] = [];
  let out = '';

  const writeLines = (from: number, to: number): void => {
    for (let i = from; i < to; i++) {
      const line = lines[i]!;
      line.forEach((cell, j) => {
        out += cell.text;
        if (j < widths.length) out += ' '.repeat(Math.max(0, widths[j]! - cell.width));
      });
      if (i + 1 < lines.length) out += '\n';
    }
  };

  // Go's format(): recursive over column blocks.
  const format = (line0: number, line1: number): void => {
    const column = widths.length;
    let start = line0;
    for (let row = line0; row < line1; row++) {
      if (column >= lines[row]!.length - 1) continue;
      writeLines(start, row);
      start = row;
      let width = minWidth;
      for (; row < line1; row++) {
        const line = lines[row]!;
        if (column >= line.length - 1) break;
        width = Math.max(width, line[column]!.width + padding);
      }
      widths.push(width);
      format(start, row);
      widths.pop();
      start = row;
      row--;
    }
    writeLines(start, line1);
  };
  format(0, lines.length);
  return out;
}
