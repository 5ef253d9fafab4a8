/**
 * The front door for load inputs: turns a path or a stream into a FileTree and reads the
 * images it holds, whichever medium it is.
 *
 * A plain tar file is indexed where it lies (members are read as byte ranges later). A
 * compressed file, and any stream (stdin), is first written — decompressed — to a file in
 * the caller's temp dir, because indexing needs a seekable, uncompressed file. A directory is
 * read as an OCI layout or an unpacked docker-archive.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { detectCompression, openDecompressed } from '../archive/compression.js';
import { InvalidArchiveError } from '../errors.js';
import * as dockerArchive from './docker-archive.js';
import { hasEntry, openDirTree, openTarTree, type FileTree } from './file-tree.js';
import type { ImageSource } from './image-source.js';
import * as ociLayout from './oci-layout.js';

export interface OpenInputOptions {
  /** A private, writable directory for the spooled copy; the caller removes it. */
  tmpDir: string;
  /** Bytes spooled so far (compressed or streamed input only). */
  onSpool?: (bytes: number) => void;
}

async function head(file: string): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const buf = Buffer.alloc(6);
    const { bytesRead } = await handle.read(buf, 0, 6, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** Writes `input`, decompressed, to `<tmpDir>/archive.tar` and returns that path. */
export async function spool(input: Readable, options: OpenInputOptions): Promise<string> {
  const target = path.join(options.tmpDir, 'archive.tar');
  const source = await openDecompressed(input);
  let bytes = 0;
  const counted = async function* () {
    for await (const chunk of source.chunks) {
      bytes += chunk.length;
      options.onSpool?.(bytes);
      yield chunk;
    }
  };
  await pipeline(Readable.from(counted()), createWriteStream(target, { mode: 0o600 }));
  return target;
}

/** A FileTree over a load input (see the module comment). */
export async function openInput(input: string | Readable, options: OpenInputOptions): Promise<FileTree> {
  if (typeof input !== 'string') return openTarTree(await spool(input, options));
  if ((await stat(input)).isDirectory()) return openDirTree(input);
  if (detectCompression(await head(input)) === 'none') return openTarTree(input);
  return openTarTree(await spool(createReadStream(input), options));
}

/**
 * The images in a tree: Docker's `manifest.json` when there is one (Docker ≥ 25 archives
 * also carry an OCI index; Docker follows manifest.json and so do we), else an OCI layout's
 * `index.json`.
 */
export async function readSource(tree: FileTree): Promise<ImageSource> {
  if (await hasEntry(tree, dockerArchive.MANIFEST_FILE)) return dockerArchive.read(tree);
  if (await hasEntry(tree, ociLayout.INDEX_FILE)) return ociLayout.read(tree);
  throw new InvalidArchiveError('invalid archive: does not contain a manifest.json');
}
