/**
 * Worker-thread side of `UnpackPool`: applies layer tars (`applyLayer`), so several layers
 * are applied at once on machines with cores to spare.
 *
 * The message protocol is described in `unpack-protocol.ts`.
 */
import { Readable } from 'node:stream';
import { parentPort } from 'node:worker_threads';

import { applyLayer, openFileRange } from './apply-layer.js';
import { PROGRESS_STEP, serializeError, type FromWorker, type StartMessage, type ToWorker } from './unpack-protocol.js';

/** The stream the tar reader pulls from: chunks arrive by message, acked once taken. */
class MessageInput extends Readable {
  readonly #task: number;
  readonly #queue: Buffer[] = [];
  #ended = false;
  #wanting = false;

  constructor(task: number) {
    super({ highWaterMark: 0 });
    this.#task = task;
  }

  add(chunk: Buffer): void {
    this.#queue.push(chunk);
    if (this.#wanting) this.#drain();
  }

  end(): void {
    this.#ended = true;
    if (this.#wanting) this.#drain();
  }

  override _read(): void {
    this.#wanting = true;
    this.#drain();
  }

  #drain(): void {
    while (this.#wanting) {
      const chunk = this.#queue.shift();
      if (chunk === undefined) {
        if (this.#ended) {
          this.#wanting = false;
          this.push(null);
        }
        return;
      }
      post({ type: 'ack', task: this.#task, bytes: chunk.length });
      this.#wanting = this.push(chunk);
    }
  }
}

function post(message: FromWorker): void {
  parentPort!.postMessage(message);
}

let current: { task: number; input: MessageInput | Readable } | undefined;

async function run(start: StartMessage, input: MessageInput | Readable): Promise<void> {
  let reported = 0;
  let latest = 0;
  try {
    const result = await applyLayer(input, {
      target: start.target,
      whiteouts: start.whiteouts,
      tarSplitPath: start.tarSplitPath,
      onProgress: (bytes) => {
        latest = bytes;
        if (bytes - reported < PROGRESS_STEP) return;
        reported = bytes;
        post({ type: 'progress', task: start.task, bytes });
      },
    });
    if (latest > reported) post({ type: 'progress', task: start.task, bytes: latest });
    post({ type: 'done', task: start.task, result });
  } catch (err) {
    post({ type: 'error', task: start.task, error: serializeError(err) });
  } finally {
    input.destroy();
    if (current?.task === start.task) current = undefined;
  }
}

parentPort?.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'start': {
      const input = message.file ? openFileRange(message.file) : new MessageInput(message.task);
      current = { task: message.task, input };
      void run(message, input);
      break;
    }
    case 'chunk':
      if (current?.task === message.task && current.input instanceof MessageInput) {
        current.input.add(Buffer.from(message.data));
      }
      break;
    case 'end':
      if (current?.task === message.task && current.input instanceof MessageInput) current.input.end();
      break;
    case 'abort':
      if (current?.task === message.task) current.input.destroy(new Error(message.message));
      break;
  }
});
