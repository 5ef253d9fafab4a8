/**
 * `docker import --change` / `-c`: the Dockerfile instructions Docker 20.10 lets an import
 * apply to the new image's config (CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD,
 * USER, VOLUME, WORKDIR), with Docker's exec/shell forms. Variable substitution (`$VAR`) is not
 * performed.
 */
import path from 'node:path';

import { InvalidArgumentError } from '../errors.js';
import { parseGoDuration } from './filters.js';
import { sortedKeys } from '../transfer/go-json.js';
import type { ContainerConfig, HealthConfig } from './api-types.js';

const ALLOWED = new Set(['cmd', 'entrypoint', 'env', 'expose', 'healthcheck', 'label', 'onbuild', 'user', 'volume', 'workdir']);

/** A JSON array of strings (exec form), or undefined for shell form. */
function execForm(rest: string): string[] | undefined {
  if (!rest.startsWith('[')) return undefined;
  try {
    const v = JSON.parse(rest) as unknown;
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined;
  } catch {
    return undefined;
  }
}

function shellOrExec(rest: string): string[] {
  return execForm(rest) ?? ['/bin/sh', '-c', rest];
}

/** Splits `a=1 "b=two words" c='x'` into words, honouring quotes and backslashes. */
function words(rest: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    const c = rest[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < rest.length) cur += rest[++i];
      else cur += c;
      continue;
    }
    if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (c === '"' || c === "'") quote = c;
    else if (c === '\\' && i + 1 < rest.length) cur += rest[++i];
    else cur += c;
  }
  if (quote) throw new InvalidArgumentError(`unexpected end of statement while looking for matching ${quote}`);
  if (inWord) out.push(cur);
  return out;
}

/** `k=v k2=v2` or the legacy `k value with spaces`. */
function pairs(instruction: string, rest: string): Array<[string, string]> {
  const first = rest.split(/\s+/, 1)[0] ?? '';
  if (!first.includes('=')) {
    const key = first;
    const value = rest.slice(key.length).trim();
    if (key === '' || value === '') throw new InvalidArgumentError(`${instruction} requires at least one argument`);
    return [[key, value]];
  }
  return words(rest).map((w) => {
    const i = w.indexOf('=');
    if (i < 0) throw new InvalidArgumentError(`Syntax error - can't find = in "${w}". Must be of the form: name=value`);
    if (i === 0) throw new InvalidArgumentError(`${instruction} names can not be blank`);
    return [w.slice(0, i), w.slice(i + 1)];
  });
}

function ports(rest: string): string[] {
  const out: string[] = [];
  for (const w of rest.split(/\s+/).filter(Boolean)) {
    const [range, proto = 'tcp'] = w.split('/', 2) as [string, string | undefined];
    const m = /^(\d+)(?:-(\d+))?$/.exec(range);
    if (!m) throw new InvalidArgumentError(`Invalid containerPort: ${range}`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw new InvalidArgumentError(`Invalid range specified for the Port: ${range}`);
    for (let p = lo; p <= hi; p++) out.push(`${p}/${proto.toLowerCase()}`);
  }
  return out;
}

function healthcheck(rest: string): HealthConfig {
  let args = rest.trim();
  const out: HealthConfig = {};
  if (/^none$/i.test(args)) return { Test: ['NONE'] };
  for (;;) {
    const m = /^--(interval|timeout|start-period|retries)=(\S+)\s*/.exec(args);
    if (!m) break;
    args = args.slice(m[0].length);
    if (m[1] === 'retries') {
      const n = Number(m[2]);
      if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`invalid retries value: ${m[2]}`);
      out.Retries = n;
      continue;
    }
    const seconds = parseGoDuration(m[2]!);
    if (seconds === undefined) throw new InvalidArgumentError(`time: invalid duration "${m[2]}"`);
    const ns = Math.round(seconds * 1e9);
    if (m[1] === 'interval') out.Interval = ns;
    else if (m[1] === 'timeout') out.Timeout = ns;
    else out.StartPeriod = ns;
  }
  const cmd = /^cmd\s+(.*)$/is.exec(args);
  if (!cmd) throw new InvalidArgumentError('Unknown type "" in HEALTHCHECK (try CMD)');
  const exec = execForm(cmd[1]!.trim());
  return { Test: exec ? ['CMD', ...exec] : ['CMD-SHELL', cmd[1]!.trim()], ...out };
}

/** Applies `changes` (one instruction each) to `config` in order; returns `config`. */
export function applyChanges(config: ContainerConfig, changes: readonly string[]): ContainerConfig {
  for (const change of changes) {
    const line = change.trim();
    if (line === '') continue;
    const m = /^(\S+)\s*([\s\S]*)$/.exec(line)!;
    const instruction = m[1]!.toLowerCase();
    const rest = m[2]!.trim();
    if (!ALLOWED.has(instruction)) throw new InvalidArgumentError(`${instruction} is not a valid change command`);
    switch (instruction) {
      case 'cmd':
        config.Cmd = shellOrExec(rest);
        break;
      case 'entrypoint':
        config.Entrypoint = shellOrExec(rest);
        break;
      case 'env': {
        const env = [...(config.Env ?? [])];
        for (const [k, v] of pairs('ENV', rest)) {
          const i = env.findIndex((e) => e.split('=', 1)[0] === k);
          if (i >= 0) env[i] = `${k}=${v}`;
          else env.push(`${k}=${v}`);
        }
        config.Env = env;
        break;
      }
      case 'label':
        config.Labels = sortedKeys({ ...(config.Labels ?? {}), ...Object.fromEntries(pairs('LABEL', rest)) });
        break;
      case 'expose': {
        const set: Record<string, Record<string, never>> = { ...(config.ExposedPorts ?? {}) };
        for (const p of ports(rest)) set[p] = {};
        config.ExposedPorts = sortedKeys(set);
        break;
      }
      case 'volume': {
        const list = execForm(rest) ?? rest.split(/\s+/).filter(Boolean);
        if (list.length === 0) throw new InvalidArgumentError('VOLUME specified can not be an empty string');
        const set: Record<string, Record<string, never>> = { ...(config.Volumes ?? {}) };
        for (const v of list) set[v] = {};
        config.Volumes = sortedKeys(set);
        break;
      }
      case 'user':
        config.User = rest;
        break;
      case 'workdir':
        config.WorkingDir = path.posix.isAbsolute(rest) ? path.posix.normalize(rest) : path.posix.join('/', config.WorkingDir, rest);
        break;
      case 'onbuild': {
        const trigger = /^(\S+)/.exec(rest)?.[1]?.toUpperCase();
        if (trigger === 'ONBUILD') throw new InvalidArgumentError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
        if (trigger === 'FROM' || trigger === 'MAINTAINER') throw new InvalidArgumentError(`${trigger} isn't allowed as an ONBUILD trigger`);
        config.OnBuild = [...(config.OnBuild ?? []), rest];
        break;
      }
      case 'healthcheck':
        config.Healthcheck = healthcheck(rest);
        break;
    }
  }
  return config;
}
