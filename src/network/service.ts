/**
 * Container networking from existing tools: a network namespace per container (made by the
 * native addon, kept by a bind mount under the exec root), wired by the CNI reference
 * plugins: `loopback`, `bridge` (a `strata0` bridge with host-local IPAM and masquerading,
 * like docker0) and `portmap` (DNAT for `-p`, with SNAT and route_localnet so a published
 * port answers on 127.0.0.1 of the host, as docker-proxy makes it for Docker).
 *
 * Modes: `bridge` (the default), `none` (a namespace with only `lo`, made by runc), `host`
 * (no namespace).
 *
 * Every attachment is recorded in `<execRoot>/net/<id>.json` before the plugins run, so
 * `detach` (CNI DEL in reverse order, then the namespace) works from that file alone, after
 * a crash of whoever attached. The exec root is a tmpfs: a reboot clears records,
 * namespaces, veths and IPAM leases together.
 */
import { createServer } from 'node:net';
import { open } from 'node:fs/promises';
import path from 'node:path';

import { mkdir, readFile, rm, unlink } from '../sys/meta-fs.js';
import { InvalidArgumentError, isErrno } from '../errors.js';
import { native } from '../native/addon.js';
import { atomicWriteFile } from '../sys/atomic.js';
import { runPlugin, type CniResult } from './cni.js';

export interface PortBinding {
  /** `80/tcp`. */
  containerPort: string;
  hostIp: string;
  /** '' = any free port. */
  hostPort: string;
}

export type NetworkModeName = 'bridge' | 'host' | 'none';

export interface Attachment {
  netnsPath?: string;
  ipAddress?: string;
}

interface Record_ {
  id: string;
  mode: NetworkModeName;
  netns?: string;
  ports: PortBinding[];
  bridgeResult?: CniResult;
}

/** The bridge network every `bridge` container joins. */
export const BRIDGE = { name: 'strata', bridge: 'strata0', subnet: '172.30.0.0/16' } as const;

async function freePort(hostIp: string, proto: string): Promise<string> {
  if (proto !== 'tcp') throw new InvalidArgumentError(`a host port must be given for ${proto}`);
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, hostIp || '0.0.0.0', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(String(port)));
    });
  });
}

export class NetworkService {
  readonly #dir: string;
  readonly #ipamDir: string;

  private constructor(execRoot: string) {
    this.#dir = path.join(execRoot, 'net');
    this.#ipamDir = path.join(execRoot, 'cni-ipam');
  }

  static async open(execRoot: string): Promise<NetworkService> {
    await mkdir(path.join(execRoot, 'net'), { recursive: true, mode: 0o700 });
    return new NetworkService(execRoot);
  }

  #recordFile(id: string): string {
    return path.join(this.#dir, `${id}.json`);
  }

  #netnsFile(id: string): string {
    return path.join(this.#dir, `${id}.netns`);
  }

  async #read(id: string): Promise<Record_ | undefined> {
    try {
      return JSON.parse(await readFile(this.#recordFile(id), 'utf8')) as Record_;
    } catch (err) {
      if (isErrno(err, 'ENOENT') || err instanceof SyntaxError) return undefined;
      throw err;
    }
  }

  async #write(r: Record_): Promise<void> {
    await atomicWriteFile(this.#recordFile(r.id), JSON.stringify(r), { mode: 0o600, fsync: false });
  }

  #bridgeConfig(): Record<string, unknown> {
    return {
      name: BRIDGE.name,
      type: 'bridge',
      bridge: BRIDGE.bridge,
      isGateway: true,
      ipMasq: true,
      hairpinMode: true,
      ipam: { type: 'host-local', ranges: [[{ subnet: BRIDGE.subnet }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: this.#ipamDir },
    };
  }

  #portmapConfig(r: Record_): Record<string, unknown> {
    return {
      name: BRIDGE.name,
      type: 'portmap',
      snat: true,
      capabilities: { portMappings: true },
      runtimeConfig: {
        portMappings: r.ports.map((p) => {
          const [port, proto = 'tcp'] = p.containerPort.split('/');
          return { hostPort: Number(p.hostPort), containerPort: Number(port), protocol: proto, ...(p.hostIp ? { hostIP: p.hostIp } : {}) };
        }),
      },
      ...(r.bridgeResult ? { prevResult: r.bridgeResult } : {}),
    };
  }

  /**
   * Wires a container's network before runc starts it. `none`/`bridge` get a namespace at
   * the returned `netnsPath` (for the OCI spec); `host` gets nothing. Undone by `detach`,
   * also when this fails half-way.
   */
  async attach(id: string, o: { mode: NetworkModeName; ports: PortBinding[]; hostname?: string }): Promise<Attachment> {
    // `host` joins the host's namespace; for `none` runc makes a fresh one itself (and brings
    // `lo` up), which costs nothing here: neither leaves anything to tear down.
    if (o.mode === 'host' || o.mode === 'none') return {};
    const ports: PortBinding[] = [];
    if (o.mode === 'bridge') {
      for (const p of o.ports) ports.push({ ...p, hostPort: p.hostPort || (await freePort(p.hostIp, p.containerPort.split('/')[1] ?? 'tcp')) });
    }
    const netns = this.#netnsFile(id);
    const record: Record_ = { id, mode: o.mode, netns, ports };
    await this.#write(record);
    try {
      const handle = await open(netns, 'wx', 0o600);
      await handle.close();
      native().netnsCreate(netns);
      await runPlugin({ command: 'ADD', containerId: id, netns, ifName: 'lo', config: { name: 'lo', type: 'loopback' } });
      if (o.mode === 'bridge') {
        record.bridgeResult = await runPlugin({ command: 'ADD', containerId: id, netns, ifName: 'eth0', config: this.#bridgeConfig() });
        await this.#write(record);
        if (ports.length > 0) await runPlugin({ command: 'ADD', containerId: id, netns, ifName: 'eth0', config: this.#portmapConfig(record) });
      }
    } catch (err) {
      await this.detach(id).catch(() => undefined);
      throw err;
    }
    return { netnsPath: netns, ipAddress: ipOf(record.bridgeResult)?.address };
  }

  /** Undoes `attach` from its record (idempotent; works after the attaching process died). */
  async detach(id: string): Promise<void> {
    const r = await this.#read(id);
    if (!r) return;
    if (r.mode === 'bridge') {
      const netns = r.netns ?? '';
      if (r.ports.length > 0) await runPlugin({ command: 'DEL', containerId: id, netns, ifName: 'eth0', config: this.#portmapConfig(r) }).catch(() => undefined);
      await runPlugin({ command: 'DEL', containerId: id, netns, ifName: 'eth0', config: this.#bridgeConfig() }).catch(() => undefined);
    }
    if (r.netns) {
      try {
        native().umount2(r.netns, native().constants.MNT_DETACH);
      } catch (err) {
        if (!isErrno(err, 'EINVAL') && !isErrno(err, 'ENOENT')) throw err;
      }
      await unlink(r.netns).catch(() => undefined);
    }
    await rm(this.#recordFile(id), { force: true });
  }

  /** Docker's `NetworkSettings` for a running container. */
  async inspect(id: string): Promise<Record<string, unknown>> {
    const r = await this.#read(id);
    const mode = r?.mode ?? 'none';
    const settings = emptySettings(mode);
    if (!r) return settings;
    if (r.netns) settings.SandboxKey = r.netns;
    const ports: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
    for (const p of r.ports) (ports[p.containerPort] ??= []).push({ HostIp: p.hostIp || '0.0.0.0', HostPort: p.hostPort });
    settings.Ports = ports;
    const ip = ipOf(r.bridgeResult);
    if (ip) {
      const mac = r.bridgeResult?.interfaces?.find((i) => i.name === 'eth0' && i.sandbox)?.mac ?? '';
      const endpoint = {
        ...emptyEndpoint(), NetworkID: BRIDGE.name, EndpointID: id, Gateway: ip.gateway, IPAddress: ip.address, IPPrefixLen: ip.prefix, MacAddress: mac,
      };
      Object.assign(settings, { Gateway: ip.gateway, IPAddress: ip.address, IPPrefixLen: ip.prefix, MacAddress: mac, EndpointID: id, Networks: { bridge: endpoint } });
    }
    return settings;
  }

  emptySettings(networkMode: string): Record<string, unknown> {
    return emptySettings(networkMode);
  }
}

function ipOf(result: CniResult | undefined): { address: string; prefix: number; gateway: string } | undefined {
  const ip = result?.ips?.find((i) => !i.address.includes(':'));
  if (!ip) return undefined;
  const [address, prefix] = ip.address.split('/');
  return { address: address!, prefix: Number(prefix), gateway: ip.gateway ?? '' };
}

/** An endpoint entry of `NetworkSettings.Networks` with nothing attached. */
export function emptyEndpoint(): Record<string, unknown> {
  return {
    IPAMConfig: null, Links: null, Aliases: null, NetworkID: '', EndpointID: '', Gateway: '', IPAddress: '', IPPrefixLen: 0,
    IPv6Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, MacAddress: '', DriverOpts: null,
  };
}

/** Docker's NetworkSettings with zero values, the mode's network listed. */
export function emptySettings(networkMode: string): Record<string, unknown> {
  const net = networkMode === 'default' ? 'bridge' : networkMode;
  return {
    Bridge: '', SandboxID: '', HairpinMode: false, LinkLocalIPv6Address: '', LinkLocalIPv6PrefixLen: 0, Ports: {},
    SandboxKey: '', SecondaryIPAddresses: null, SecondaryIPv6Addresses: null, EndpointID: '', Gateway: '',
    GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, IPAddress: '', IPPrefixLen: 0, IPv6Gateway: '', MacAddress: '',
    Networks: { [net]: emptyEndpoint() },
  };
}
