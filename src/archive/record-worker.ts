/**
 * Worker-thread side of `recordOffThread` (record.ts): hashes a layer tar (diffID) and builds
 * its tar-split record while the main thread writes the files. One worker serves many jobs;
 * each job is a stream of chunks identified by `id`.
 *
 * Protocol (main → worker): {t:'start', id, record} · {t:'chunk', id, buf} · {t:'end', id} ·
 * {t:'abort', id}. Worker → main: {t:'ack', id, n} per chunk processed · {t:'out', id, buf}
 * gzip bytes of the record · {t:'done', id, diffId} · {t:'error', id, error}.
 */
import { createHash, type Hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { createGzip, type Gzip } from 'node:zlib';
import { TarParser } from './tar-reader.js';
import { TarSplitRecorder } from './tar-split.js';

export type ToRecordWorker =
  | { t: 'start'; id: number; record: boolean; maxMetaSize: number }
  | { t: 'chunk'; id: number; buf: Uint8Array }
  | { t: 'end'; id: number }
  | { t: 'abort'; id: number };

export type FromRecordWorker =
  | { t: 'ack'; id: number; n: number }
  | { t: 'out'; id: number; buf: Uint8Array }
  | { t: 'done'; id: number; diffId: string }
  | { t: 'error'; id: number; error: { name: string; message: string; code?: string; entry?: string } };

interface Job {
  hash: Hash;
  parser: TarParser;
  recorder: TarSplitRecorder;
  gzip: Gzip | undefined;
  failed: boolean;
}

const jobs = new Map<number, Job>();
const port = parentPort!;

function post(msg: FromRecordWorker, transfer?: ArrayBuffer[]): void {
  port.postMessage(msg, transfer);
}

function fail(id: number, err: unknown): void {
  const job = jobs.get(id);
  if (job) {
    job.failed = true;
    job.gzip?.destroy();
    jobs.delete(id);
  }
  const e = err as { name?: string; message?: string; code?: string; entry?: string };
  post({ t: 'error', id, error: { name: e.name ?? 'Error', message: e.message ?? String(err), code: e.code, entry: e.entry } });
}

port.on('message', (msg: ToRecordWorker) => {
  const { id } = msg;
  switch (msg.t) {
    case 'start': {
      const gzip = msg.record ? createGzip() : undefined;
      gzip?.on('data', (b: Buffer) => {
        // Copy out of zlib's buffer so the transfer cannot detach memory it still uses.
        const copy = new Uint8Array(b);
        post({ t: 'out', id, buf: copy }, [copy.buffer as ArrayBuffer]);
      });
      gzip?.on('error', (err) => fail(id, err));
      const recorder = new TarSplitRecorder(gzip ? (text) => gzip.write(text) : () => undefined);
      const parser = new TarParser({
        header: (h) => recorder.file(h),
        data: (c) => recorder.fileData(c),
        entryEnd: () => recorder.fileEnd(),
        raw: (c) => recorder.raw(c),
        end: () => recorder.end(),
        trailing: (c) => recorder.trailing(c),
      }, { maxMetaSize: msg.maxMetaSize });
      jobs.set(id, { hash: createHash('sha256'), parser, recorder, gzip, failed: false });
      return;
    }
    case 'chunk': {
      const job = jobs.get(id);
      if (!job) return;
      try {
        const buf = Buffer.from(msg.buf.buffer, msg.buf.byteOffset, msg.buf.byteLength);
        job.hash.update(buf);
        job.parser.write(buf);
        post({ t: 'ack', id, n: buf.length });
      } catch (err) {
        fail(id, err);
      }
      return;
    }
    case 'end': {
      const job = jobs.get(id);
      if (!job) return;
      try {
        job.parser.finish();
        job.recorder.close();
      } catch (err) {
        fail(id, err);
        return;
      }
      const diffId = `sha256:${job.hash.digest('hex')}`;
      const finish = () => {
        jobs.delete(id);
        post({ t: 'done', id, diffId });
      };
      if (job.gzip) {
        // 'end' (not 'finish') so every compressed byte has been posted first.
        job.gzip.once('end', finish);
        job.gzip.end();
      } else {
        finish();
      }
      return;
    }
    case 'abort': {
      const job = jobs.get(id);
      job?.gzip?.destroy();
      jobs.delete(id);
      return;
    }
  }
});
