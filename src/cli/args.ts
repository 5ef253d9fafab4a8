/**
 * Command-line parsing with the docker CLI's (cobra/pflag) conventions and messages:
 * `-q`, `-aq`, `-o FILE`, `-oFILE`, `--output FILE`, `--output=FILE`, `--flag=false`,
 * repeatable list flags, flags anywhere among the arguments, `--` ending the flags.
 */

export type FlagType = 'bool' | 'string' | 'list';

export interface FlagSpec {
  name: string;
  short?: string;
  type: FlagType;
  /** Placeholder shown in help (`string`, `file`…). */
  value?: string;
  description: string;
  /** Default of a bool flag (e.g. `--human` is true). */
  default?: boolean | string;
}

export interface CommandSpec {
  /** `strata image ls` — the words that name the command. */
  name: string;
  /** Arguments part of the usage line: `[OPTIONS] IMAGE [IMAGE...]`. */
  usage: string;
  description: string;
  flags: FlagSpec[];
  /** Positional argument count rules (docker's cli/required.go). */
  args?: { min?: number; max?: number };
  /**
   * false: flags end at the first positional argument (`run IMAGE CMD -x`: `-x` belongs to
   * CMD), as cobra's SetInterspersed(false) for run, create and exec.
   */
  interspersed?: boolean;
}

export type FlagValues = Record<string, boolean | string | string[] | undefined>;

export interface Parsed {
  flags: FlagValues;
  args: string[];
  help: boolean;
}

/** A flag error: printed with "See '<cmd> --help'." and exit status 125, as docker does. */
export class FlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlagError';
  }
}

/** A wrong number of arguments: docker prints the usage and exits 1. */
export class ArgCountError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ArgCountError';
  }
}

/** Go's strconv.ParseBool. */
function parseBool(v: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  return undefined;
}

function flagLabel(f: FlagSpec): string {
  return f.short ? `-${f.short}, --${f.name}` : `--${f.name}`;
}

export function parseArgs(spec: CommandSpec, argv: readonly string[]): Parsed {
  const flags: FlagValues = {};
  for (const f of spec.flags) {
    if (f.type === 'bool') flags[f.name] = f.default === true;
    else if (f.type === 'list') flags[f.name] = [];
    else flags[f.name] = typeof f.default === 'string' ? f.default : undefined;
  }
  const args: string[] = [];
  let help = false;
  const long = new Map(spec.flags.map((f) => [f.name, f]));
  const short = new Map(spec.flags.filter((f) => f.short).map((f) => [f.short!, f]));

  const assign = (f: FlagSpec, value: string) => {
    if (f.type === 'bool') {
      const b = parseBool(value);
      if (b === undefined) {
        throw new FlagError(`invalid argument "${value}" for "${flagLabel(f)}" flag: strconv.ParseBool: parsing "${value}": invalid syntax`);
      }
      flags[f.name] = b;
    } else if (f.type === 'list') {
      (flags[f.name] as string[]).push(value);
    } else {
      flags[f.name] = value;
    }
  };

  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--') && a.length > 2) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      if (name === 'help') {
        help = true;
        continue;
      }
      const f = long.get(name);
      if (!f) throw new FlagError(`unknown flag: --${name}`);
      if (eq >= 0) assign(f, a.slice(eq + 1));
      else if (f.type === 'bool') flags[f.name] = true;
      else if (i + 1 < argv.length) assign(f, argv[++i]!);
      else throw new FlagError(`flag needs an argument: --${name}`);
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      // Shorthands: `-aq`, `-oFILE`, `-o FILE`, `-H=false`.
      for (let j = 1; j < a.length; j++) {
        const c = a[j]!;
        // `-h` is help unless the command defines it (run's --hostname).
        if (c === 'h' && !short.has('h')) {
          help = true;
          continue;
        }
        const f = short.get(c);
        if (!f) throw new FlagError(`unknown shorthand flag: '${c}' in ${a}`);
        const rest = a.slice(j + 1);
        if (f.type === 'bool') {
          if (rest.startsWith('=')) {
            assign(f, rest.slice(1));
            break;
          }
          flags[f.name] = true;
          continue;
        }
        if (rest !== '') assign(f, rest.startsWith('=') ? rest.slice(1) : rest);
        else if (i + 1 < argv.length) assign(f, argv[++i]!);
        else throw new FlagError(`flag needs an argument: '${c}' in -${c}`);
        break;
      }
      continue;
    }
    if (spec.interspersed === false) {
      args.push(...argv.slice(i));
      break;
    }
    args.push(a);
  }
  return { flags, args, help };
}

/** Checks the positional argument count with docker's messages. */
export function checkArgs(spec: CommandSpec, args: readonly string[]): void {
  const { min, max } = spec.args ?? {};
  const plural = (n: number) => (n === 1 ? 'argument' : 'arguments');
  const tail = `See '${spec.name} --help'.\n\nUsage:  ${spec.name} ${spec.usage}\n\n${spec.description}`;
  if (min !== undefined && min === max && args.length !== min) {
    throw new ArgCountError(`"${spec.name}" requires exactly ${min} ${plural(min)}.\n${tail}`);
  }
  if (min !== undefined && args.length < min) {
    throw new ArgCountError(`"${spec.name}" requires at least ${min} ${plural(min)}.\n${tail}`);
  }
  if (max !== undefined && args.length > max) {
    if (max === 0) throw new ArgCountError(`"${spec.name}" accepts no arguments.\n${tail}`);
    throw new ArgCountError(`"${spec.name}" accepts at most ${max} ${plural(max)}.\n${tail}`);
  }
}

/** `--help` text in docker's layout. */
export function helpText(spec: CommandSpec): string {
  const rows = spec.flags.map((f) => {
    const label = f.short ? `-${f.short}, --${f.name}` : `    --${f.name}`;
    const value = f.type === 'bool' ? '' : ` ${f.value ?? (f.type === 'list' ? 'list' : 'string')}`;
    const def = f.type === 'bool' && f.default === true ? ' (default true)' : '';
    return [`  ${label}${value}`, `${f.description}${def}`] as const;
  });
  rows.push(['      --help', 'Print usage']);
  const width = Math.max(...rows.map((r) => r[0].length)) + 3;
  const options = rows.map(([l, d]) => l.padEnd(width) + d).join('\n');
  return `\nUsage:  ${spec.name} ${spec.usage}\n\n${spec.description}\n\nOptions:\n${options}\n`;
}
