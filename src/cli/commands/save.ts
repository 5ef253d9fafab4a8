/** `strata save` / `strata image save`. */
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';

import type { Parsed } from '../args.js';
import type { Cli } from '../main.js';
import { ClientError } from '../output.js';
import { ProgressLines } from '../progress.js';
import { truncateId } from '../units.js';

export const spec = {
  usage: '[OPTIONS] IMAGE [IMAGE...]',
  description: 'Save one or more images to a tar archive (streamed to STDOUT by default)',
  flags: [
    { name: 'output', short: 'o', type: 'string' as const, value: 'string', description: 'Write to a file, instead of STDOUT' },
  ],
  args: { min: 1 },
};

async function checkOutputDir(output: string): Promise<void> {
  const dir = path.dirname(output);
  if (dir === '' || dir === '.') return;
  try {
    await stat(dir);
  } catch {
    throw new ClientError(`failed to save image: invalid output path: directory ${JSON.stringify(dir)} does not exist`);
  }
}

export async function run(cli: Cli, { flags, args }: Parsed): Promise<number> {
  const output = (flags.output as string | undefined) || undefined;
  if (output === undefined && cli.stdout.isTTY) {
    throw new ClientError('cowardly refusing to save to a terminal. Use the -o flag or redirect');
  }
  if (output !== undefined) await checkOutputDir(output);
  const engine = await cli.engine();
  if (output === undefined) {
    await engine.save(args, cli.stdout);
    return 0;
  }
  const bars = cli.stderr.isTTY ? new ProgressLines(cli.stderr) : undefined;
  // Written next to the target and renamed into place, so a failed save leaves nothing
  // (docker's CopyToFile does the same; the file ends up 0600 like docker's).
  const tmp = path.join(path.dirname(output), `.strata_temp_${randomBytes(6).toString('hex')}`);
  // A file, not a stream: the engine writes layers in place, side by side (see engine.save).
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    try {
      await engine.save(args, { fd }, {
        onProgress: bars && ((e) => bars.update(truncateId(e.diffId), 'Saving layer', e.bytes, e.total, e.bytes >= e.total)),
      });
    } finally {
      closeSync(fd);
    }
    await rename(tmp, output);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  return 0;
}
