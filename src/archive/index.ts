/**
 * The archive module: tar ⇄ filesystem for layers, knowing nothing of drivers or images.
 *
 *  - layer.ts       contract used by the layer store: unpackLayer, assembleLayer,
 *                   tarOverlayUpper, tarTreeDiff
 *  - tar-header.ts  header blocks: decode (ustar/GNU/PAX/v7), encode like Go's tar.Writer
 *  - tar-reader.ts  TarParser (push, raw accounting), readTarEntries (pull), indexTarFile
 *  - tar-split.ts   Docker's tar-split.json.gz record (write + read)
 *  - crc64.ts       CRC-64/ISO (tar-split payload checksums)
 *  - compression.ts gzip / zstd-if-available detection and streaming decompression
 *  - resolve.ts     confined path resolution for untrusted names
 *
 * Must not import drivers/, layers/, images/ or transfer/ (it is imported by them).
 */
export * from './layer.js';
export {
  BLOCK_SIZE, decodeHeaderBlock, encodeHeader, payloadSize, blockPadding, isHeaderOnlyType, cleanPath,
  type TarHeader, type Typeflag,
} from './tar-header.js';
export { TarParser, indexTarFile, readTarEntries, type TarEntry, type TarIndexEntry, type TarParserEvents } from './tar-reader.js';
export { TarSplitRecorder, readTarSplit, type TarSplitEntry } from './tar-split.js';
export { Crc64, crc64 } from './crc64.js';
export { detectCompression, openDecompressed, type Compression, type DecompressedInput } from './compression.js';
