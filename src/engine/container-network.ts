/**
 * What the container service needs from networking: a namespace wired for the container's
 * mode before `runc run`, its address for /etc/hosts, Docker's NetworkSettings for inspect,
 * and an idempotent teardown that works from on-disk state alone (after a crash).
 */
import type { PortBinding } from './container-config.js';

export interface NetworkAttachment {
  /** The netns file runc joins; undefined for `host` (no namespace) and for `none`, where runc makes a fresh one. */
  netnsPath?: string;
  /** The container's address, for /etc/hosts; undefined without a network. */
  ipAddress?: string;
}

/** Docker's `NetworkSettings` of container inspect. */
export type NetworkSettings = Record<string, unknown>;

export interface ContainerNetworks {
  attach(containerId: string, o: { mode: 'bridge' | 'host' | 'none'; ports: PortBinding[]; hostname: string }): Promise<NetworkAttachment>;
  detach(containerId: string): Promise<void>;
  inspect(containerId: string): Promise<NetworkSettings>;
  /** What inspect shows for a container that is not running. */
  emptySettings(networkMode: string): NetworkSettings;
}

/** An endpoint entry of `NetworkSettings.Networks` with nothing attached. */
export function emptyEndpoint(): Record<string, unknown> {
  return {
    IPAMConfig: null, Links: null, Aliases: null, NetworkID: '', EndpointID: '', Gateway: '', IPAddress: '', IPPrefixLen: 0,
    IPv6Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, MacAddress: '', DriverOpts: null,
  };
}

/** Docker's NetworkSettings with zero values, the mode's network listed. */
export function emptyNetworkSettings(networkMode: string): NetworkSettings {
  const net = networkMode === 'default' ? 'bridge' : networkMode;
  return {
    Bridge: '', SandboxID: '', HairpinMode: false, LinkLocalIPv6Address: '', LinkLocalIPv6PrefixLen: 0, Ports: {},
    SandboxKey: '', SecondaryIPAddresses: null, SecondaryIPv6Addresses: null, EndpointID: '', Gateway: '',
    GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, IPAddress: '', IPPrefixLen: 0, IPv6Gateway: '', MacAddress: '',
    Networks: { [net]: emptyEndpoint() },
  };
}

/**
 * `host` and `none` need no wiring (runc makes the fresh namespace for `none`); `bridge` is
 * the network module's job and refused without it.
 */
export class NamespaceOnlyNetworks implements ContainerNetworks {
  async attach(_id: string, o: { mode: 'bridge' | 'host' | 'none' }): Promise<NetworkAttachment> {
    if (o.mode === 'bridge') {
      const { NotSupportedError } = await import('../errors.js');
      throw new NotSupportedError('bridge networking is not available; use --network none or --network host');
    }
    return {};
  }

  async detach(): Promise<void> {}

  async inspect(): Promise<NetworkSettings> {
    return emptyNetworkSettings('none');
  }

  emptySettings(networkMode: string): NetworkSettings {
    return emptyNetworkSettings(networkMode);
  }
}
