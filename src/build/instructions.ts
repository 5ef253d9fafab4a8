/**
 * Dockerfile parsing, stage two: nodes → typed instructions grouped into stages, with the
 * per-instruction argument checks and messages of Docker 20.10's classic builder
 * (`dockerfile parse error line <n>: <reason>`).
 *
 * Nothing here substitutes variables: that happens when a step is dispatched, because the
 * values depend on the base image's Env and on the ARGs seen so far.
 */
import { goQuote, parseGoDuration } from './go-format.js';
import type { HealthConfig } from './image-config.js';
import { DockerfileParseError, type ParsedNode, type ParseResult } from './parser.js';

interface Common {
  /** Upper-case instruction name. */
  name: string;
  /** The instruction as written (trimmed logical line), shown as `Step n/m : <code>`. */
  code: string;
  line: number;
}

export interface KeyValue { key: string; value: string }
export interface ArgDef { key: string; value?: string }

export type Instruction = Common & (
  | { kind: 'env'; pairs: KeyValue[] }
  | { kind: 'maintainer'; maintainer: string }
  | { kind: 'label'; pairs: KeyValue[]; noExpand?: boolean }
  | { kind: 'add'; sources: string[]; dest: string; chown: string; chmod: string }
  | { kind: 'copy'; sources: string[]; dest: string; chown: string; chmod: string; from: string }
  | { kind: 'onbuild'; expression: string }
  | { kind: 'workdir'; path: string }
  | { kind: 'run'; cmdLine: string[]; prependShell: boolean; flagsUsed: string[] }
  | { kind: 'cmd'; cmdLine: string[]; prependShell: boolean }
  | { kind: 'entrypoint'; cmdLine: string[] | null; prependShell: boolean }
  | { kind: 'healthcheck'; health: HealthConfig }
  | { kind: 'expose'; ports: string[] }
  | { kind: 'user'; user: string }
  | { kind: 'volume'; volumes: string[] }
  | { kind: 'stopsignal'; signal: string }
  | { kind: 'arg'; args: ArgDef[] }
  | { kind: 'shell'; shell: string[] }
);

export type InstructionKind = Instruction['kind'];

export interface Stage {
  /** Lower-cased `AS` name, or '' for an unnamed stage. */
  name: string;
  /** FROM's image argument before substitution. */
  baseName: string;
  platform: string;
  code: string;
  line: number;
  commands: Instruction[];
}

export interface Dockerfile {
  /** ARGs before the first FROM (visible to FROM lines only, unless redeclared). */
  metaArgs: Array<Instruction & { kind: 'arg' }>;
  stages: Stage[];
  escapeToken: string;
  warnings: string[];
  syntax?: string;
}

const BUILDKIT_ONLY = (flag: string) =>
  `the --${flag} option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled`;
export { BUILDKIT_ONLY as buildkitOnlyMessage };

/** Docker's BFlags: `--name=value` words checked against the flags an instruction takes. */
class Flags {
  readonly #args: string[];
  readonly #defs = new Map<string, { type: 'string' | 'strings' | 'bool'; value: string; values: string[] }>();
  readonly used: string[] = [];

  constructor(args: string[]) {
    this.#args = args;
  }

  string(name: string): () => string {
    const def = { type: 'string' as const, value: '', values: [] };
    this.#defs.set(name, def);
    return () => def.value;
  }

  parse(): void {
    const seen = new Set<string>();
    for (const raw of this.#args) {
      if (!raw.startsWith('--')) throw new Error(`Arg should start with -- : ${raw}`);
      if (raw === '--') return;
      let name = raw.slice(2);
      let value = '';
      const eq = name.indexOf('=');
      if (eq >= 0) {
        value = name.slice(eq + 1);
        name = name.slice(0, eq);
      }
      const def = this.#defs.get(name);
      if (!def) throw new Error(`Unknown flag: ${name}`);
      if (seen.has(name) && def.type !== 'strings') throw new Error(`Duplicate flag specified: ${name}`);
      seen.add(name);
      this.used.push(name);
      if (eq < 0) throw new Error(`Missing a value on flag: ${name}`);
      if (def.type === 'strings') def.values.push(value);
      else def.value = value;
    }
  }
}

/** Instruction-level error, reported as Docker does with the starting line. */
function instructionError(message: string, node: ParsedNode): DockerfileParseError {
  return new DockerfileParseError(`dockerfile parse error line ${node.startLine}: ${message}`, node.startLine);
}

/** Shell-form arguments are one string; exec-form stays a list. */
function cmdLineOf(node: ParsedNode): string[] {
  if (node.args.length === 0) return [];
  return node.json ? [...node.args] : [node.args.join(' ')];
}

function kvPairs(args: string[], name: string): KeyValue[] {
  if (args.length === 0) throw new Error(`${name} requires at least one argument`);
  if (args.length % 2 !== 0) throw new Error(`Bad input to ${name}, too many arguments`);
  const out: KeyValue[] = [];
  for (let i = 0; i < args.length; i += 2) {
    if (args[i]!.length === 0) throw new Error(`${name} names can not be blank`);
    out.push({ key: args[i]!, value: args[i + 1]! });
  }
  return out;
}

const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;

/** A FROM line as a stage header. */
function parseFrom(node: ParsedNode): Stage {
  const args = node.args;
  let name = '';
  if (args.length === 3 && args[1]!.toLowerCase() === 'as') {
    name = args[2]!.toLowerCase();
    if (!STAGE_NAME.test(name)) {
      throw new Error(`invalid name for build stage: ${goQuote(args[2]!)}, name can't start with a number or contain symbols`);
    }
  } else if (args.length !== 1) {
    throw new Error('FROM requires either one or three arguments');
  }
  const flags = new Flags(node.flags);
  const platform = flags.string('platform');
  flags.parse();
  return { name, baseName: args[0]!, platform: platform(), code: node.original.trim(), line: node.startLine, commands: [] };
}

function parseHealthcheck(node: ParsedNode): HealthConfig {
  if (node.args.length === 0) throw new Error('HEALTHCHECK requires at least one argument');
  const typ = node.args[0]!.toUpperCase();
  const rest = node.args.slice(1);
  if (typ === 'NONE') {
    if (rest.length !== 0) throw new Error('HEALTHCHECK NONE takes no arguments');
    return { Test: ['NONE'] };
  }
  const flags = new Flags(node.flags);
  const interval = flags.string('interval');
  const timeout = flags.string('timeout');
  const startPeriod = flags.string('start-period');
  const retries = flags.string('retries');
  flags.parse();
  if (typ !== 'CMD') throw new Error(`Unknown type ${goQuote(typ)} in HEALTHCHECK (try CMD)`);
  const cmd = node.json ? rest : rest.length > 0 ? [rest.join(' ')] : [];
  if (cmd.length === 0) throw new Error('Missing command after HEALTHCHECK CMD');
  const h: HealthConfig = { Test: [node.json ? 'CMD' : 'CMD-SHELL', ...cmd] };
  const dur = (value: string, flag: string): number => {
    if (value === '') return 0;
    const ns = parseGoDuration(value);
    if (ns < 1e6) throw new Error(`Interval ${goQuote(flag)} cannot be less than 1ms`);
    return ns;
  };
  h.Interval = dur(interval(), 'interval');
  h.Timeout = dur(timeout(), 'timeout');
  h.StartPeriod = dur(startPeriod(), 'start-period');
  const r = retries();
  if (r !== '') {
    if (!/^[+-]?\d+$/.test(r)) throw new Error(`strconv.ParseInt: parsing ${goQuote(r)}: invalid syntax`);
    const n = Number(r);
    if (n > 2147483647 || n < -2147483648) throw new Error(`strconv.ParseInt: parsing ${goQuote(r)}: value out of range`);
    if (n < 1) throw new Error(`--retries must be at least 1 (not ${n})`);
    h.Retries = n;
  } else h.Retries = 0;
  return h;
}

/** Parses one node (FROM gives a Stage). Errors are plain Errors with Docker's reason text. */
function parseNode(node: ParsedNode): Instruction | Stage {
  const name = node.keyword.toUpperCase();
  const common: Common = { name, code: node.original.trim(), line: node.startLine };
  const noFlags = () => new Flags(node.flags).parse();
  const args = node.args;
  switch (node.keyword) {
    case 'from':
      return parseFrom(node);
    case 'env':
      noFlags();
      return { ...common, kind: 'env', pairs: kvPairs(args, 'ENV') };
    case 'maintainer':
      if (args.length !== 1) throw new Error('MAINTAINER requires exactly one argument');
      noFlags();
      return { ...common, kind: 'maintainer', maintainer: args[0]! };
    case 'label':
      noFlags();
      return { ...common, kind: 'label', pairs: kvPairs(args, 'LABEL') };
    case 'add':
    case 'copy': {
      if (args.length < 2) {
        throw new Error(`${name} requires at least two arguments, but only one was provided. Destination could not be determined`);
      }
      const flags = new Flags(node.flags);
      const chown = flags.string('chown');
      const from = node.keyword === 'copy' ? flags.string('from') : () => '';
      const chmod = flags.string('chmod');
      flags.parse();
      const base = { sources: args.slice(0, -1), dest: args[args.length - 1]!, chown: chown(), chmod: chmod() };
      return node.keyword === 'add' ? { ...common, kind: 'add', ...base } : { ...common, kind: 'copy', ...base, from: from() };
    }
    case 'onbuild': {
      if (!node.child) throw new Error('ONBUILD requires at least one argument');
      noFlags();
      const trigger = node.child.keyword.toUpperCase();
      if (trigger === 'ONBUILD') throw new Error('Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
      if (trigger === 'MAINTAINER' || trigger === 'FROM') throw new Error(`${trigger} isn't allowed as an ONBUILD trigger`);
      return { ...common, kind: 'onbuild', expression: node.original.replace(/^\s*ONBUILD\s*/i, '') };
    }
    case 'workdir':
      if (args.length !== 1) throw new Error('WORKDIR requires exactly one argument');
      noFlags();
      return { ...common, kind: 'workdir', path: args[0]! };
    case 'run': {
      const flags = new Flags(node.flags);
      // Registered so that they parse; dispatch refuses them as BuildKit-only, like Docker.
      flags.string('mount');
      flags.string('network');
      flags.string('security');
      flags.parse();
      return { ...common, kind: 'run', cmdLine: cmdLineOf(node), prependShell: !node.json, flagsUsed: flags.used };
    }
    case 'cmd':
      noFlags();
      return { ...common, kind: 'cmd', cmdLine: cmdLineOf(node), prependShell: !node.json };
    case 'entrypoint': {
      noFlags();
      const line = cmdLineOf(node);
      return { ...common, kind: 'entrypoint', cmdLine: line.length === 0 ? null : line, prependShell: !node.json };
    }
    case 'healthcheck':
      return { ...common, kind: 'healthcheck', health: parseHealthcheck(node) };
    case 'expose':
      if (args.length === 0) throw new Error('EXPOSE requires at least one argument');
      noFlags();
      // Docker sorts the words as written, before substitution.
      return { ...common, kind: 'expose', ports: [...args].sort(goStringCompare) };
    case 'user':
      if (args.length !== 1) throw new Error('USER requires exactly one argument');
      noFlags();
      return { ...common, kind: 'user', user: args[0]! };
    case 'volume': {
      if (args.length === 0) throw new Error('VOLUME requires at least one argument');
      noFlags();
      const volumes = args.map((v) => v.trim());
      if (volumes.some((v) => v === '')) throw new Error('VOLUME specified can not be an empty string');
      return { ...common, kind: 'volume', volumes };
    }
    case 'stopsignal':
      // Docker never checks STOPSIGNAL's flags.
      if (args.length !== 1) throw new Error('STOPSIGNAL requires exactly one argument');
      return { ...common, kind: 'stopsignal', signal: args[0]! };
    case 'arg': {
      if (args.length < 1) throw new Error('ARG requires at least one argument');
      const defs = args.map((a): ArgDef => {
        const eq = a.indexOf('=');
        if (eq < 0) return { key: a };
        if (eq === 0) throw new Error('ARG names can not be blank');
        return { key: a.slice(0, eq), value: a.slice(eq + 1) };
      });
      return { ...common, kind: 'arg', args: defs };
    }
    case 'shell': {
      noFlags();
      const shell = cmdLineOf(node);
      if (shell.length === 0) throw new Error('SHELL requires at least one argument');
      if (!node.json) throw new Error('SHELL requires the arguments to be in JSON form');
      return { ...common, kind: 'shell', shell };
    }
    default:
      throw new Error(`unknown instruction: ${name}`);
  }
}

/** Byte-wise comparison, as Go's sort.Strings orders. */
export function goStringCompare(a: string, b: string): number {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return Buffer.compare(x, y);
}

/** Parses a single node as a command (used for ONBUILD triggers); FROM is refused. */
export function parseInstruction(node: ParsedNode): Instruction {
  let parsed: Instruction | Stage;
  try {
    parsed = parseNode(node);
  } catch (err) {
    if (err instanceof DockerfileParseError) throw err;
    throw instructionError((err as Error).message, node);
  }
  if (!('kind' in parsed)) throw instructionError('*instructions.Stage is not a command type', node);
  return parsed;
}

/**
 * Groups parsed nodes into stages. ARGs before the first FROM become meta args; any other
 * instruction there fails with `no build stage in current context`.
 */
export function toDockerfile(parsed: ParseResult): Dockerfile {
  const metaArgs: Dockerfile['metaArgs'] = [];
  const stages: Stage[] = [];
  for (const node of parsed.nodes) {
    let item: Instruction | Stage;
    try {
      item = parseNode(node);
    } catch (err) {
      throw instructionError((err as Error).message, node);
    }
    if (!('kind' in item)) {
      stages.push(item);
      continue;
    }
    if (stages.length === 0) {
      if (item.kind === 'arg') {
        metaArgs.push(item);
        continue;
      }
      throw new DockerfileParseError('no build stage in current context', node.startLine);
    }
    stages[stages.length - 1]!.commands.push(item);
  }
  const out: Dockerfile = { metaArgs, stages, escapeToken: parsed.escapeToken, warnings: parsed.warnings };
  if (parsed.syntax !== undefined) out.syntax = parsed.syntax;
  return out;
}

/** Index of the stage named `name` (case-insensitive), or -1. */
export function findStage(stages: readonly Stage[], name: string): number {
  const lower = name.toLowerCase();
  return stages.findIndex((s) => s.name === lower);
}
