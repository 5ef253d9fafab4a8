/** `strata info` / `strata system info`. */
import type { Parsed } from '../args.js';
import { parseFormat, resolveJsonFormat } from '../format.js';
import type { Cli } from '../main.js';
import { goG } from '../units.js';

export const spec = {
  usage: '[OPTIONS]',
  description: 'Display system-wide information',
  flags: [
    { name: 'format', short: 'f', type: 'string' as const, value: 'string', description: 'Format the output using the given Go template' },
  ],
  args: { max: 0 },
};

/** go-units BytesSize: binary units with 4 significant digits (`23.54GiB`). */
function bytesSize(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${goG(n, 4)}${units[i]}`;
}

export async function run(cli: Cli, { flags }: Parsed): Promise<number> {
  const engine = await cli.engine();
  const info = await engine.info();
  const format = (flags.format as string | undefined) || undefined;
  if (format) {
    cli.out(`${parseFormat(resolveJsonFormat(format)).template.execute(info)}\n`);
    return 0;
  }
  const lines = [
    ` Containers: ${info.Containers}`,
    `  Running: ${info.ContainersRunning}`,
    `  Paused: ${info.ContainersPaused}`,
    `  Stopped: ${info.ContainersStopped}`,
    ` Images: ${info.Images}`,
    ` Server Version: ${info.ServerVersion}`,
    ` Storage Driver: ${info.Driver}`,
    ...info.DriverStatus.map(([k, v]) => `  ${k}: ${v}`),
    ` Kernel Version: ${info.KernelVersion}`,
    ` Operating System: ${info.OperatingSystem}`,
    ` OSType: ${info.OSType}`,
    ` Architecture: ${info.Architecture}`,
    ` CPUs: ${info.NCPU}`,
    ` Total Memory: ${bytesSize(info.MemTotal)}`,
    ` Name: ${info.Name}`,
    ` Docker Root Dir: ${info.DockerRootDir}`,
  ];
  cli.out(`${lines.join('\n')}\n`);
  return 0;
}
