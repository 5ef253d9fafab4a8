/**
 * Running CNI plugins (containernetworking-plugins, Debian) as the CNI spec says: the
 * plugin binary from CNI_PATH, the command and container in the environment, the network
 * config on stdin, the result (or a `{code, msg}` error) as JSON on stdout.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';

import { StrataError } from '../errors.js';

export const CNI_PATH = process.env.STRATA_CNI_PATH ?? '/usr/lib/cni';
export const CNI_VERSION = '1.0.0';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK';

export interface CniResult {
  cniVersion: string;
  interfaces?: Array<{ name: string; mac?: string; sandbox?: string }>;
  ips?: Array<{ interface?: number; address: string; gateway?: string }>;
  routes?: Array<{ dst: string; gw?: string }>;
  dns?: unknown;
}

export interface CniCall {
  command: CniCommand;
  containerId: string;
  /** Path of the container's network namespace ('' for a DEL after it is gone). */
  netns: string;
  ifName: string;
  /** The plugin's network configuration (type, name, cniVersion and its own keys). */
  config: Record<string, unknown>;
}

/** Runs one plugin; resolves with its result (ADD) or undefined (DEL/CHECK). */
export function runPlugin(call: CniCall): Promise<CniResult | undefined> {
  const type = String(call.config.type);
  if (!/^[a-z0-9-]+$/.test(type)) return Promise.reject(new StrataError('ERR_INVALID_ARGUMENT', `invalid CNI plugin type ${type}`));
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(CNI_PATH, type), [], {
      env: {
        PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
        CNI_COMMAND: call.command,
        CNI_CONTAINERID: call.containerId,
        CNI_NETNS: call.netns,
        CNI_IFNAME: call.ifName,
        CNI_PATH,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.once('error', (e) => reject(new StrataError('ERR_SYSTEM', `CNI plugin ${type}: ${e.message}; install containernetworking-plugins (scripts/setup.sh)`)));
    child.once('close', (code) => {
      const text = Buffer.concat(out).toString('utf8');
      if (code !== 0) {
        let msg = text.trim() || Buffer.concat(err).toString('utf8').trim();
        try {
          const e = JSON.parse(text) as { msg?: string; details?: string };
          msg = [e.msg, e.details].filter(Boolean).join(': ');
        } catch {
          // plain text error
        }
        reject(new StrataError('ERR_SYSTEM', `CNI plugin ${type} ${call.command} failed: ${msg}`));
        return;
      }
      if (call.command !== 'ADD') return resolve(undefined);
      try {
        resolve(JSON.parse(text) as CniResult);
      } catch {
        reject(new StrataError('ERR_SYSTEM', `CNI plugin ${type} returned no valid result`));
      }
    });
    child.stdin.end(JSON.stringify({ cniVersion: CNI_VERSION, ...call.config }));
  });
}
