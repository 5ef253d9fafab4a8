/**
 * The classic builder's evaluation, minus the side effects: which stages run, how many steps
 * there are, and for each instruction the image config change and the `#(nop)` comment that
 * becomes its history line and cache key. builder.ts drives this state machine with an
 * executor; nothing here touches the filesystem.
 *
 * Per instruction, as Docker 20.10 does it:
 *
 *  - ENV replaces a variable of the same name in place or appends; LABEL merges; USER,
 *    STOPSIGNAL, SHELL replace; EXPOSE adds `port/proto` keys (ranges expanded); VOLUME adds
 *    keys (JSON or words); ONBUILD appends the trigger text; ARG declares.
 *  - WORKDIR resolves against the previous one (an absolute path is kept as written) and
 *    creates the directory, so it can make a layer.
 *  - CMD/ENTRYPOINT/RUN in shell form get the SHELL (default `/bin/sh -c`) prepended.
 *    ENTRYPOINT clears an inherited CMD unless this stage set a non-empty CMD before it.
 *    `ENTRYPOINT []` stores null, `CMD []` stores [].
 *  - Substitution applies to ADD COPY ENV EXPOSE FROM LABEL STOPSIGNAL USER VOLUME WORKDIR
 *    and ARG (not to CMD, ENTRYPOINT, RUN, SHELL, HEALTHCHECK, ONBUILD, MAINTAINER, nor to
 *    COPY --from); the environment is the config's Env plus the declared build args the Env
 *    does not define.
 *  - Metadata instructions commit a container whose Cmd is `[shell…, "#(nop) ", "<TEXT>"]`;
 *    WORKDIR, COPY and ADD use the one-argument form `"#(nop) <TEXT>"`; RUN records its
 *    command, prefixed with `|<n> K=V…` when build args apply.
 */
import { InvalidArgumentError } from '../errors.js';
import { cleanPath } from '../sys/go-path.js';
import { BuildArgs } from './build-args.js';
import { goDuration, goList, goQuote, goQuoteList, goQuoteRune } from './go-format.js';
import {
  cloneContainerConfig, emptyContainerConfig, toContainerConfig,
  type ContainerConfig, type HealthConfig, type ImageConfigJson,
} from './image-config.js';
import {
  buildkitOnlyMessage, findStage, goStringCompare, parseInstruction, toDockerfile,
  type Dockerfile, type Instruction, type Stage,
} from './instructions.js';
import { parseDockerfile, DockerfileParseError, type ParseOptions } from './parser.js';
import { ShellLex } from './shell-words.js';

/** Linux default PATH Docker adds to a stage's Env when the base has none. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const DEFAULT_SHELL: readonly string[] = ['/bin/sh', '-c'];

export interface PlanOptions {
  /** `--build-arg`: a null value means "NAME without a value" (it does not override). */
  buildArgs?: Readonly<Record<string, string | null>> | ReadonlyMap<string, string | null>;
  /** `--target`: stop after this stage. */
  target?: string;
  /** `--label`: LABEL instructions appended to the last stage (not substituted). */
  labels?: Readonly<Record<string, string>>;
  parse?: ParseOptions;
}

export interface BuildPlan {
  dockerfile: Dockerfile;
  /** Stages to run (cut after the target). */
  stages: Stage[];
  /** Docker's step total: meta ARGs + FROMs + instructions (triggers not counted). */
  totalSteps: number;
  buildArgs: BuildArgs;
}

/** Parses and lays out a build. Throws DockerfileParseError / InvalidArgumentError. */
export function planBuild(dockerfileText: string | Dockerfile, options: PlanOptions = {}): BuildPlan {
  const dockerfile = typeof dockerfileText === 'string' ? toDockerfile(parseDockerfile(dockerfileText, options.parse)) : dockerfileText;
  let stages = dockerfile.stages.map((s) => ({ ...s, commands: [...s.commands] }));
  if (options.target) {
    const i = findStage(stages, options.target);
    if (i < 0) throw new InvalidArgumentError(`failed to reach build target ${options.target} in Dockerfile`);
    stages = stages.slice(0, i + 1);
  }
  const labels = options.labels ?? {};
  for (const key of Object.keys(labels).sort()) {
    const last = stages[stages.length - 1];
    if (!last) break;
    last.commands.push({ name: 'LABEL', code: `LABEL ${key}=${labels[key]}`, line: 0, kind: 'label', pairs: [{ key, value: labels[key]! }], noExpand: true });
  }
  let total = dockerfile.metaArgs.length + stages.length;
  for (const s of stages) total += s.commands.length;
  const args = options.buildArgs instanceof Map ? options.buildArgs : new Map(Object.entries(options.buildArgs ?? {}));
  return { dockerfile, stages, totalSteps: total, buildArgs: new BuildArgs(args) };
}

/** Processes the meta ARGs (before the first FROM) into the build's args. */
export function applyMetaArgs(plan: BuildPlan): void {
  const lex = new ShellLex(plan.dockerfile.escapeToken);
  for (const meta of plan.dockerfile.metaArgs) {
    const env = [...plan.buildArgs.allAllowed()].map(([k, v]) => `${k}=${v}`);
    for (const a of meta.args) {
      const key = lex.processWord(a.key, env);
      const value = a.value === undefined ? undefined : lex.processWord(a.value, env);
      plan.buildArgs.addArg(key, value);
      plan.buildArgs.addMetaArg(key, value);
    }
  }
}

/** What FROM resolves to: an image, or scratch (`id` '' and no config). */
export interface BaseImage {
  id: string;
  config: ImageConfigJson | null;
}

/** A step that commits a container without running anything (metadata, WORKDIR). */
export interface CommitAction {
  kind: 'commit';
  /** The config the cache is probed with (Cmd = the #(nop) comment). */
  probe: ContainerConfig;
  /** WORKDIR: the directory to create. Every container step also creates the config's WorkingDir. */
  isWorkdir: boolean;
  /** Lines the builder prints (HEALTHCHECK override note). */
  notes: string[];
}

export interface CopyAction {
  kind: 'copy';
  cmdName: 'COPY' | 'ADD';
  sources: string[];
  /** As written (after substitution): part of the #(nop) comment. */
  dest: string;
  /** Absolute container path (WORKDIR applied, trailing `/` kept). */
  destPath: string;
  chown: string;
  /** COPY --from: a stage name/index or an image reference ('' = the context). */
  from: string;
  /** ADD unpacks local archives. */
  allowExtract: boolean;
}

export interface RunAction {
  kind: 'run';
  probe: ContainerConfig;
  /** What the container runs (shell prepended for shell form). */
  argv: string[];
  /** Env of the container: config Env + build args. */
  env: string[];
  user: string;
  workdir: string;
}

export type StepAction = CommitAction | CopyAction | RunAction;

/** Docker's `Step n/m : <instruction>` text for an instruction. */
export function stepText(cmd: Instruction | Stage): string {
  return cmd.code;
}

/**
 * One stage's evolving state (Docker's dispatchState). Call `begin` for the FROM, then
 * `dispatch` for each instruction and `stepDone` with the resulting image.
 */
export class StageState {
  runConfig: ContainerConfig = emptyContainerConfig();
  /** The config of the image `imageId` (for the daemon's create-time merge). */
  parentConfig: ContainerConfig | null = null;
  /** The whole config JSON of image `imageId` (null for scratch): the next image's parent. */
  parentImage: ImageConfigJson | null = null;
  imageId = '';
  maintainer = '';
  cmdSet = false;
  stageName = '';
  os = 'linux';
  readonly buildArgs: BuildArgs;
  readonly lex: ShellLex;

  constructor(plan: BuildPlan) {
    this.buildArgs = plan.buildArgs.forStage();
    this.lex = new ShellLex(plan.dockerfile.escapeToken);
  }

  /** FROM's image name after substitution with the meta args. */
  static baseName(plan: BuildPlan, stage: Stage, lex = new ShellLex(plan.dockerfile.escapeToken)): string {
    const env = [...plan.buildArgs.allMeta()].map(([k, v]) => `${k}=${v}`);
    const name = lex.processWord(stage.baseName, env);
    if (name === '') throw new InvalidArgumentError(`base name (${stage.baseName}) should not be blank`);
    return name;
  }

  /** Starts the stage on `base`; returns the ONBUILD triggers to run first. */
  begin(stage: Stage, base: BaseImage): string[] {
    this.stageName = stage.name;
    this.imageId = base.id;
    this.os = base.config?.os || 'linux';
    this.runConfig = base.config?.config ? toContainerConfig(base.config.config) : emptyContainerConfig();
    this.parentConfig = base.config?.config ? toContainerConfig(base.config.config) : null;
    this.parentImage = base.config;
    const env = this.runConfig.Env ?? [];
    if (!env.some((e) => e.split('=')[0] === 'PATH')) this.runConfig.Env = [...env, `PATH=${DEFAULT_PATH}`];
    this.runConfig.OpenStdin = false;
    this.runConfig.StdinOnce = false;
    const triggers = this.runConfig.OnBuild ?? [];
    if (triggers.length > 0) this.runConfig.OnBuild = null;
    this.runConfig.Image = this.imageId;
    return [...triggers];
  }

  /** Parses one ONBUILD trigger into an instruction. */
  static parseTrigger(trigger: string): Instruction {
    const parsed = parseDockerfile(trigger);
    if (parsed.nodes.length !== 1) throw new InvalidArgumentError('onbuild trigger should be a single expression');
    return parseInstruction(parsed.nodes[0]!);
  }

  /** Records the image a step produced (or reused): it is the parent of the next step. */
  stepDone(imageId: string, image: ImageConfigJson): void {
    this.imageId = imageId;
    this.parentImage = image;
    this.parentConfig = toContainerConfig(image.config);
    this.runConfig.Image = imageId;
  }

  get shell(): string[] {
    return this.runConfig.Shell && this.runConfig.Shell.length > 0 ? [...this.runConfig.Shell] : [...DEFAULT_SHELL];
  }

  /** The environment substitution sees: Env, then declared args the Env lacks. */
  substitutionEnv(): string[] {
    const env = this.runConfig.Env ?? [];
    return [...env, ...this.buildArgs.filterAllowed(env)];
  }

  #nop(comment: string): ContainerConfig {
    const c = cloneContainerConfig(this.runConfig);
    c.Cmd = [...this.shell, '#(nop) ', comment];
    return c;
  }

  #nopString(comment: string): ContainerConfig {
    const c = cloneContainerConfig(this.runConfig);
    c.Cmd = [...this.shell, '#(nop) ' + comment];
    return c;
  }

  #commit(comment: string, notes: string[] = []): CommitAction {
    return { kind: 'commit', probe: this.#nop(comment), isWorkdir: false, notes };
  }

  #resolveCmdLine(cmdLine: string[] | null, prependShell: boolean): string[] | null {
    if (prependShell && cmdLine !== null) return [...this.shell, ...cmdLine];
    return cmdLine === null ? null : [...cmdLine];
  }

  /** Applies an instruction; returns what the builder has to do for it. */
  dispatch(cmd: Instruction): StepAction {
    const env = this.substitutionEnv();
    const word = (w: string) => this.lex.processWord(w, env);
    const rc = this.runConfig;
    switch (cmd.kind) {
      case 'env': {
        let msg = 'ENV';
        for (const p of cmd.pairs) {
          const key = word(p.key);
          const entry = `${key}=${word(p.value)}`;
          msg += ' ' + entry;
          const list = rc.Env ?? [];
          const i = list.findIndex((e) => e.split('=')[0] === key);
          if (i >= 0) list[i] = entry;
          else list.push(entry);
          rc.Env = list;
        }
        return this.#commit(msg);
      }
      case 'maintainer':
        this.maintainer = cmd.maintainer;
        return this.#commit('MAINTAINER ' + cmd.maintainer);
      case 'label': {
        rc.Labels ??= {};
        let msg = 'LABEL';
        for (const p of cmd.pairs) {
          const key = cmd.noExpand ? p.key : word(p.key);
          const value = cmd.noExpand ? p.value : word(p.value);
          rc.Labels[key] = value;
          msg += ` ${key}=${value}`;
        }
        return this.#commit(msg);
      }
      case 'add':
      case 'copy': {
        if (cmd.chmod !== '') throw new InvalidArgumentError(buildkitOnlyMessage('chmod'));
        const chown = word(cmd.chown);
        const sources = cmd.sources.map(word);
        const dest = word(cmd.dest);
        return {
          kind: 'copy', cmdName: cmd.kind === 'add' ? 'ADD' : 'COPY', sources, dest,
          destPath: normalizeDest(rc.WorkingDir, dest), chown, from: cmd.kind === 'copy' ? cmd.from : '', allowExtract: cmd.kind === 'add',
        };
      }
      case 'onbuild':
        rc.OnBuild = [...(rc.OnBuild ?? []), cmd.expression];
        return this.#commit('ONBUILD ' + cmd.expression);
      case 'workdir': {
        const p = word(cmd.path);
        if (p === '') throw new InvalidArgumentError('cannot normalize nothing');
        rc.WorkingDir = p.startsWith('/') ? p : cleanPath('/' + (rc.WorkingDir || '') + '/' + p);
        return { kind: 'commit', probe: this.#nopString('WORKDIR ' + rc.WorkingDir), isWorkdir: true, notes: [] };
      }
      case 'run': {
        if (cmd.flagsUsed.length > 0) throw new InvalidArgumentError(buildkitOnlyMessage(cmd.flagsUsed[0]!));
        const argv = this.#resolveCmdLine(cmd.cmdLine, cmd.prependShell) ?? [];
        const buildArgs = this.buildArgs.filterAllowed(rc.Env);
        let saveCmd = argv;
        if (buildArgs.length > 0) {
          const shown = buildArgs.filter((kv) => this.buildArgs.isReferencedOrNotBuiltin(kv.slice(0, kv.indexOf('=')))).sort(goStringCompare);
          saveCmd = [`|${shown.length}`, ...shown, ...argv];
        }
        const probe = cloneContainerConfig(rc);
        probe.Cmd = saveCmd;
        probe.ArgsEscaped = false;
        if (saveCmd.length > 0) probe.Entrypoint = null;
        return { kind: 'run', probe, argv, env: [...(rc.Env ?? []), ...buildArgs], user: rc.User, workdir: rc.WorkingDir };
      }
      case 'cmd': {
        const c = this.#resolveCmdLine(cmd.cmdLine, cmd.prependShell);
        rc.Cmd = c;
        rc.ArgsEscaped = false;
        const action = this.#commit('CMD ' + goQuoteList(c));
        if (cmd.cmdLine.length !== 0) this.cmdSet = true;
        return action;
      }
      case 'healthcheck': {
        const notes: string[] = [];
        const old = rc.Healthcheck?.Test;
        if (old && old.length > 0 && old[0] !== 'NONE') notes.push(`Note: overriding previous HEALTHCHECK: ${goList(old)}`);
        rc.Healthcheck = { ...cmd.health, ...(cmd.health.Test ? { Test: [...cmd.health.Test] } : {}) };
        return this.#commit('HEALTHCHECK ' + healthcheckText(rc.Healthcheck), notes);
      }
      case 'entrypoint': {
        rc.Entrypoint = this.#resolveCmdLine(cmd.cmdLine, cmd.prependShell);
        rc.ArgsEscaped = false;
        if (!this.cmdSet) rc.Cmd = null;
        return this.#commit('ENTRYPOINT ' + goQuoteList(rc.Entrypoint));
      }
      case 'expose': {
        const ports: string[] = [];
        for (const p of cmd.ports) ports.push(...this.lex.processWords(p, env));
        const keys = parsePortSpecs(ports);
        rc.ExposedPorts ??= {};
        for (const k of keys) rc.ExposedPorts[k] = {};
        return this.#commit('EXPOSE ' + ports.join(' '));
      }
      case 'user':
        rc.User = word(cmd.user);
        return this.#commit('USER ' + rc.User);
      case 'volume': {
        const volumes = cmd.volumes.map(word);
        rc.Volumes ??= {};
        for (const v of volumes) {
          if (v === '') throw new InvalidArgumentError('VOLUME specified can not be an empty string');
          rc.Volumes[v] = {};
        }
        return this.#commit('VOLUME ' + goList(volumes));
      }
      case 'stopsignal': {
        const sig = word(cmd.signal);
        validateSignal(sig);
        rc.StopSignal = sig;
        return this.#commit('STOPSIGNAL ' + sig);
      }
      case 'arg': {
        const parts: string[] = [];
        for (const a of cmd.args) {
          const key = word(a.key);
          const value = a.value === undefined ? undefined : word(a.value);
          parts.push(value === undefined ? key : `${key}=${value}`);
          this.buildArgs.addArg(key, value);
        }
        return this.#commit('ARG ' + parts.join(' '));
      }
      case 'shell':
        rc.Shell = [...cmd.shell];
        return this.#commit('SHELL ' + goList(rc.Shell));
    }
  }

  /** The probe config of a COPY/ADD once its sources' checksum is known. */
  copyProbe(action: CopyAction, checksum: string): ContainerConfig {
    const chown = action.chown ? `--chown=${action.chown}` : '';
    // Docker's format has no space between the flag and the checksum; kept for cache and
    // history compatibility.
    return this.#nopString(`${action.cmdName} ${chown}${checksum} in ${action.dest} `);
  }
}

/** Docker's normalizeDest: a relative destination is under WORKDIR; a trailing `/` is kept. */
export function normalizeDest(workingDir: string, dest: string): string {
  if (dest.startsWith('/')) return dest;
  let out = cleanPath('/' + (workingDir || '') + '/' + dest);
  if (dest.endsWith('/') && !out.endsWith('/')) out += '/';
  return out;
}

/**
 * The container_config Docker stores for a step that committed a container it created
 * (metadata instructions, WORKDIR): creating the container fills the Hostname, cleans the
 * WorkingDir and merges the parent image's config into unset fields.
 */
export function createdContainerConfig(probe: ContainerConfig, containerId: string, parent: ContainerConfig | null): ContainerConfig {
  const c = cloneContainerConfig(probe);
  c.Hostname = containerId.slice(0, 12);
  if (parent) mergeImageConfig(c, parent);
  if (c.WorkingDir) c.WorkingDir = cleanPath(c.WorkingDir);
  return c;
}

/** The daemon's merge of an image's config into a container's (unset fields only). */
export function mergeImageConfig(user: ContainerConfig, image: ContainerConfig): void {
  if (user.User === '') user.User = image.User;
  if (!user.ExposedPorts || Object.keys(user.ExposedPorts).length === 0) user.ExposedPorts = image.ExposedPorts ? { ...image.ExposedPorts } : null;
  else for (const p of Object.keys(image.ExposedPorts ?? {})) user.ExposedPorts[p] ??= {};
  if (!user.Env || user.Env.length === 0) user.Env = image.Env ? [...image.Env] : null;
  else {
    for (const e of image.Env ?? []) {
      const key = e.split('=')[0];
      if (!user.Env.some((u) => u.split('=')[0] === key)) user.Env.push(e);
    }
  }
  user.Labels ??= {};
  for (const [k, v] of Object.entries(image.Labels ?? {})) if (!(k in user.Labels)) user.Labels[k] = v;
  if (!user.Entrypoint || user.Entrypoint.length === 0) {
    if (!user.Cmd || user.Cmd.length === 0) user.Cmd = image.Cmd ? [...image.Cmd] : null;
    if (user.Entrypoint === null) user.Entrypoint = image.Entrypoint ? [...image.Entrypoint] : null;
  }
  if (image.Healthcheck) {
    if (!user.Healthcheck) user.Healthcheck = { ...image.Healthcheck };
    else {
      const h = user.Healthcheck;
      if (!h.Test || h.Test.length === 0) h.Test = image.Healthcheck.Test;
      if (!h.Interval) h.Interval = image.Healthcheck.Interval;
      if (!h.Timeout) h.Timeout = image.Healthcheck.Timeout;
      if (!h.StartPeriod) h.StartPeriod = image.Healthcheck.StartPeriod;
      if (!h.Retries) h.Retries = image.Healthcheck.Retries;
    }
  }
  if (user.WorkingDir === '') user.WorkingDir = image.WorkingDir;
  if (!user.Volumes || Object.keys(user.Volumes).length === 0) user.Volumes = image.Volumes ? { ...image.Volumes } : null;
  else Object.assign(user.Volumes, image.Volumes ?? {});
  if (user.StopSignal === '') user.StopSignal = image.StopSignal;
}

/** `%q` of a *HealthConfig: `&{["CMD-SHELL" "x"] "30s" "5s" "10s" '\x03'}`. */
export function healthcheckText(h: HealthConfig): string {
  return `&{${goQuoteList(h.Test ?? null)} ${goQuote(goDuration(h.Interval ?? 0))} ${goQuote(goDuration(h.Timeout ?? 0))} ${goQuote(goDuration(h.StartPeriod ?? 0))} ${goQuoteRune(h.Retries ?? 0)}}`;
}

// ---------------------------------------------------------------------------------------------
// EXPOSE and STOPSIGNAL validation (go-connections/nat, pkg/signal)

function parseUintStrict(s: string, max: number): number | undefined {
  if (!/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  return n <= max ? n : undefined;
}

function parsePortRange(ports: string): [number, number] {
  if (ports === '') throw new Error('Empty string specified for ports.');
  if (!ports.includes('-')) {
    const n = parseUintStrict(ports, 65535);
    if (n === undefined) throw new Error('bad port');
    return [n, n];
  }
  const [a, b] = ports.split('-');
  const start = parseUintStrict(a ?? '', 65535);
  const end = parseUintStrict(b ?? '', 65535);
  if (start === undefined || end === undefined) throw new Error('bad port');
  if (end < start) throw new Error(`Invalid range specified for the Port: ${ports}`);
  return [start, end];
}

/** `EXPOSE` words → `port/proto` keys (nat.ParsePortSpecs), with its messages. */
export function parsePortSpecs(specs: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of specs) {
    const parts = raw.split(':');
    const n = parts.length;
    const containerPart = parts[n - 1]!;
    const hostPort = n === 1 ? '' : parts[n - 2]!;
    const ip = n <= 2 ? '' : parts.slice(0, n - 2).join(':');
    let proto = '';
    let containerPort = '';
    const pp = containerPart.split('/');
    if (containerPart.length === 0 || pp[0]!.length === 0) { proto = ''; containerPort = ''; }
    else if (pp.length === 1) { proto = 'tcp'; containerPort = containerPart; }
    else if (pp[1]!.length === 0) { proto = 'tcp'; containerPort = pp[0]!; }
    else { proto = pp[1]!; containerPort = pp[0]!; }
    const bareIp = ip.replace(/^\[(.*)\]$/, '$1');
    if (bareIp !== '' && !/^[0-9a-fA-F:.]+$/.test(bareIp)) throw new InvalidArgumentError(`Invalid ip address: ${bareIp}`);
    if (containerPort === '') throw new InvalidArgumentError(`No port specified: ${raw}<empty>`);
    let start: number, end: number;
    try {
      [start, end] = parsePortRange(containerPort);
    } catch {
      throw new InvalidArgumentError(`Invalid containerPort: ${containerPort}`);
    }
    if (hostPort !== '') {
      let hs: number, he: number;
      try {
        [hs, he] = parsePortRange(hostPort);
      } catch {
        throw new InvalidArgumentError(`Invalid hostPort: ${hostPort}`);
      }
      if (end - start !== he - hs && he !== hs) {
        throw new InvalidArgumentError(`Invalid ranges specified for container and host Ports: ${containerPort} and ${hostPort}`);
      }
    }
    const lower = proto.toLowerCase();
    if (lower !== 'tcp' && lower !== 'udp' && lower !== 'sctp') throw new InvalidArgumentError(`Invalid proto: ${proto}`);
    for (let p = start; p <= end; p++) out.push(`${p}/${lower}`);
  }
  return out;
}

const SIGNALS = new Set([
  'ABRT', 'ALRM', 'BUS', 'CHLD', 'CLD', 'CONT', 'FPE', 'HUP', 'ILL', 'INT', 'IO', 'IOT', 'KILL', 'PIPE', 'POLL',
  'PROF', 'PWR', 'QUIT', 'SEGV', 'STKFLT', 'STOP', 'SYS', 'TERM', 'TRAP', 'TSTP', 'TTIN', 'TTOU', 'URG', 'USR1',
  'USR2', 'VTALRM', 'WINCH', 'XCPU', 'XFSZ', 'RTMIN', 'RTMAX',
  ...Array.from({ length: 15 }, (_, i) => `RTMIN+${i + 1}`),
  ...Array.from({ length: 14 }, (_, i) => `RTMAX-${i + 1}`),
]);

/** Docker's signal.ParseSignal check (`Invalid signal: X`). */
export function validateSignal(raw: string): void {
  if (/^[+-]?\d+$/.test(raw)) {
    if (Number(raw) === 0) throw new InvalidArgumentError(`Invalid signal: ${raw}`);
    return;
  }
  const name = raw.toUpperCase().replace(/^SIG/, '');
  if (!SIGNALS.has(name)) throw new InvalidArgumentError(`Invalid signal: ${raw}`);
}

export { DockerfileParseError };
