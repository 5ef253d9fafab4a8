/**
 * `-p`/`--publish` values as Docker parses them (go-connections' nat.ParsePortSpec):
 * `[ip:[hostPort]:]containerPort[/proto]`, ports or equal-length ranges, IPv6 in brackets.
 */
import { isIP } from 'node:net';

import { InvalidArgumentError } from '../errors.js';
import type { PortBinding } from './container-config.js';

function parseRange(text: string, what: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text);
  const bad = () => new InvalidArgumentError(`Invalid ${what}: ${text}`);
  if (!m) throw bad();
  const start = Number(m[1]);
  const end = m[2] === undefined ? start : Number(m[2]);
  if (start < 1 && what === 'containerPort') throw bad();
  if (start > 65535 || end > 65535 || end < start) throw bad();
  return [start, end];
}

/** One `-p` value into its bindings (a range gives one per port). */
export function parsePublishFlag(raw: string): PortBinding[] {
  let rest = raw;
  let proto = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    proto = rest.slice(slash + 1).toLowerCase();
    rest = rest.slice(0, slash);
    if (!['tcp', 'udp', 'sctp'].includes(proto)) throw new InvalidArgumentError(`Invalid proto: ${proto}`);
  }
  let ip = '';
  let hostPart = '';
  let ctrPart: string;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) throw new InvalidArgumentError(`Invalid ip address: ${rest}`);
    ip = rest.slice(1, close);
    const tail = rest.slice(close + 1);
    const parts = tail.split(':');
    if (parts.length !== 3 || parts[0] !== '') throw new InvalidArgumentError(`Invalid port specification: "${raw}"`);
    hostPart = parts[1]!;
    ctrPart = parts[2]!;
  } else {
    const parts = rest.split(':');
    if (parts.length === 1) ctrPart = parts[0]!;
    else if (parts.length === 2) [hostPart, ctrPart] = parts as [string, string];
    else if (parts.length === 3) [ip, hostPart, ctrPart] = parts as [string, string, string];
    else throw new InvalidArgumentError(`Invalid port specification: "${raw}"`);
  }
  if (ip !== '' && isIP(ip) === 0) throw new InvalidArgumentError(`Invalid ip address: ${ip}`);
  if (ctrPart === '') throw new InvalidArgumentError(`No port specified: ${raw}<empty>`);
  const [cStart, cEnd] = parseRange(ctrPart, 'containerPort');
  let hStart = 0;
  let hEnd = 0;
  if (hostPart !== '') [hStart, hEnd] = parseRange(hostPart, 'hostPort');
  const count = cEnd - cStart + 1;
  if (hostPart !== '' && hEnd - hStart + 1 !== count && hStart !== hEnd) {
    throw new InvalidArgumentError(`Invalid ranges specified for container and host Ports: ${ctrPart} and ${hostPart}`);
  }
  const out: PortBinding[] = [];
  for (let i = 0; i < count; i++) {
    const hostPort = hostPart === '' ? '' : String(hEnd - hStart + 1 === count ? hStart + i : hStart);
    out.push({ containerPort: `${cStart + i}/${proto}`, hostIp: ip, hostPort });
  }
  return out;
}
