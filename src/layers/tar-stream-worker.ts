/**
 * Worker side of `tar-stream-pool.ts`: rebuilds one layer tar at a time from its tar-split
 * record and layer dir, hashes it, and hands the bytes to the main thread by transfer. The
 * reads, the sha256 and the tar-split parsing — most of a save's CPU — run here, so the main
 * thread only writes the archive, and two layers can be rebuilt at once on two cores.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { parentPort } from 'node:worker_threads';

import { assembleLayer } from '../archive/layer.js';
import type { TarStreamRequest, TarStreamToMain } from './tar-stream-pool.js';

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

port.on('message', (m: { type: 'start'; req: TarStreamRequest } | { type: 'credit'; id: number; bytes: number } | { type: 'cancel'; id: number }) => {
  if (m.type === 'start') {
    void run(m.req);
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
