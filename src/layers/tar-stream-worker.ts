/**
 * Worker side of `tar-stream-pool.ts`: rebuilds one layer tar at a time from its tar-split
 * record and layer dir and hashes it. A `start` job hands the bytes to the main thread by
 * transfer; a `write` job writes them itself at a given offset of a file the main thread
 * opened (workers share the process's descriptors), so a `save -o` moves no layer byte
 * through the main thread at all. The reads, the sha256 and the tar-split parsing — most of
 * a save's CPU — run here, and two layers can be rebuilt at once on two cores.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, writeSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

import { assembleLayer, assembleLayerSync } from '../archive/layer.js';
import { tarSplitTarSize } from '../archive/tar-split.js';
import type { TarStreamRequest, TarStreamToMain, TarWriteRequest } from './tar-stream-pool.js';

const port = parentPort!;
interface Credit {
  allowed: number;
  cancelled: boolean;
  wake?: () => void;
}
const credits = new Map<number, Credit>();

function post(message: TarStreamToMain, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

/** A transferable copy of `chunk`: its own ArrayBuffer when it owns one, else a copy. */
function detach(chunk: Buffer): ArrayBuffer {
  if (chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength && chunk.buffer instanceof ArrayBuffer) {
    return chunk.buffer;
  }
  const copy = new ArrayBuffer(chunk.byteLength);
  new Uint8Array(copy).set(chunk);
  return copy;
}

async function run(req: TarStreamRequest): Promise<void> {
  const credit: Credit = { allowed: req.window, cancelled: false };
  credits.set(req.id, credit);
  const tarSplit = createReadStream(req.tarSplitPath);
  const hash = createHash('sha256');
  let sent = 0;
  try {
    for await (const chunk of assembleLayer(tarSplit, req.dir, { verifyChecksums: false }) as AsyncIterable<Buffer>) {
      hash.update(chunk);
      while (sent + chunk.length > credit.allowed && sent > 0 && !credit.cancelled) {
        await new Promise<void>((resolve) => (credit.wake = resolve));
      }
      if (credit.cancelled) return;
      sent += chunk.length;
      const ab = detach(chunk);
      post({ type: 'data', id: req.id, data: ab }, [ab]);
    }
    post({ type: 'end', id: req.id, digest: `sha256:${hash.digest('hex')}` });
  } catch (err) {
    post({ type: 'error', id: req.id, message: (err as Error).message, name: (err as Error).name });
  } finally {
    tarSplit.destroy();
    credits.delete(req.id);
  }
}

/** Payloads are gathered into writes of this size (a layer is mostly small files). */
const WRITE_SIZE = 4 << 20;

/**
 * A write job runs synchronously, to its end: the worker has nothing else to do meanwhile,
 * and sync reads and writes skip a thread-pool round trip per file (a layer is mostly small
 * files). readahead keeps the disk busy on a cold cache (assembleLayerSync).
 */
function write(req: TarWriteRequest): void {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(WRITE_SIZE);
  let written = 0;
  try {
    assembleLayerSync(readFileSync(req.tarSplitPath), req.dir, buf, (length) => {
      // The slot in the archive was sized from the layer's recorded size: a layer dir that
      // yields more must not spill into the next member.
      if (written + length > req.size) throw new Error(`layer tar is longer than its recorded ${req.size} bytes`);
      hash.update(buf.subarray(0, length));
      for (let done = 0; done < length; ) done += writeSync(req.fd, buf, done, length - done, req.position + written + done);
      written += length;
      post({ type: 'progress', id: req.id, bytes: written });
    });
    if (written !== req.size) throw new Error(`layer tar is ${written} bytes, not its recorded ${req.size}`);
    post({ type: 'end', id: req.id, digest: `sha256:${hash.digest('hex')}` });
  } catch (err) {
    post({ type: 'error', id: req.id, message: (err as Error).message, name: (err as Error).name });
  }
}

/** Sizing a layer's tar means inflating its whole tar-split record: done here, side by side. */
function size(id: number, tarSplitPath: string): void {
  try {
    post({ type: 'size', id, bytes: tarSplitTarSize(readFileSync(tarSplitPath)) });
  } catch (err) {
    post({ type: 'error', id, message: (err as Error).message, name: (err as Error).name });
  }
}

type ToWorker =
  | { type: 'size'; id: number; tarSplitPath: string }
  | { type: 'start'; req: TarStreamRequest }
  | { type: 'write'; req: TarWriteRequest }
  | { type: 'credit'; id: number; bytes: number }
  | { type: 'cancel'; id: number };

port.on('message', (m: ToWorker) => {
  if (m.type === 'size') {
    size(m.id, m.tarSplitPath);
  } else if (m.type === 'start') {
    void run(m.req);
  } else if (m.type === 'write') {
    write(m.req);
  } else {
    const c = credits.get(m.id);
    if (!c) return;
    if (m.type === 'cancel') c.cancelled = true;
    else c.allowed += m.bytes;
    const wake = c.wake;
    c.wake = undefined;
    wake?.();
  }
});
