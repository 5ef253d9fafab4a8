/**
 * Applies one layer tar into a driver's layer dir and writes its tar-split record: the step
 * shared by in-process registration and the unpack worker threads.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';

import { unpackLayer, type UnpackResult, type WhiteoutFormat } from '../archive/layer.js';

/** A byte range of a file: `start` inclusive, `end` exclusive (default: to the end). */
export interface FileRange {
  path: string;
  start?: number;
  end?: number;
}

export interface ApplyTarget {
  target: string;
  whiteouts: WhiteoutFormat;
  /** Where `tar-split.json.gz` is written (mode exactly 0644). */
  tarSplitPath: string;
  /** Uncompressed bytes applied so far. */
  onProgress?: (bytes: number) => void;
}

/** Reads a file range in 1 MiB chunks (fewer, larger reads than the 64 KiB default). */
export function openFileRange(range: FileRange): Readable {
  return createReadStream(range.path, {
    start: range.start,
    // createReadStream's end is inclusive.
    end: range.end === undefined ? undefined : range.end - 1,
    highWaterMark: 1 << 20,
  });
}

export async function applyLayer(input: Readable, to: ApplyTarget): Promise<UnpackResult> {
  const tarSplit = createWriteStream(to.tarSplitPath, { mode: 0o644 });
  try {
    const result = await unpackLayer(input, {
      target: to.target,
      whiteouts: to.whiteouts,
      tarSplit,
      onProgress: to.onProgress,
    });
    await finished(tarSplit);
    // The create mode went through the umask; the layout wants exactly 0644.
    await chmod(to.tarSplitPath, 0o644);
    return result;
  } catch (err) {
    tarSplit.destroy();
    throw err;
  }
}
