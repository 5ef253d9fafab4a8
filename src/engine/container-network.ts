/**
 * What the container service needs from networking (implemented by network/NetworkService):
 * a namespace wired for the container's mode before `runc run`, its address for /etc/hosts,
 * Docker's NetworkSettings for inspect, and an idempotent teardown that works from on-disk
 * state alone (after a crash).
 */
import type { Attachment, NetworkModeName, PortBinding } from '../network/service.js';

export type NetworkSettings = Record<string, unknown>;

export interface ContainerNetworks {
  attach(containerId: string, o: { mode: NetworkModeName; ports: PortBinding[]; hostname: string }): Promise<Attachment>;
  detach(containerId: string): Promise<void>;
  inspect(containerId: string): Promise<NetworkSettings>;
  /** What inspect shows for a container that is not running. */
  emptySettings(networkMode: string): NetworkSettings;
}
