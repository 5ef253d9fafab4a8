/**
 * `docker info` and `docker system df` data, in the Engine API's shapes (only the fields
 * strata has something true to say about; containers and volumes are not wired in yet).
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';

import type { ImageSummary } from './api-types.js';

export interface SystemInfo {
  Containers: number;
  ContainersRunning: number;
  ContainersPaused: number;
  ContainersStopped: number;
  Images: number;
  Driver: string;
  DriverStatus: Array<[string, string]>;
  KernelVersion: string;
  OperatingSystem: string;
  OSType: string;
  Architecture: string;
  NCPU: number;
  MemTotal: number;
  DockerRootDir: string;
  Name: string;
  ServerVersion: string;
}

export interface DiskUsage {
  LayersSize: number;
  Images: ImageSummary[];
  Containers: Array<{ Id: string; Image: string; Command: string; Created: number; State: string; Status: string; Names: string[]; SizeRw?: number; Mounts: unknown[] }>;
  Volumes: Array<{ Name: string; UsageData: { Size: number; RefCount: number } }>;
  BuildCache: unknown[];
}

/** PRETTY_NAME from os-release, as Docker reports the operating system. */
async function operatingSystem(): Promise<string> {
  for (const file of ['/etc/os-release', '/usr/lib/os-release']) {
    try {
      const text = await readFile(file, 'utf8');
      const m = /^PRETTY_NAME=(.*)$/m.exec(text);
      if (m) return m[1]!.trim().replace(/^(["'])(.*)\1$/, '$2');
    } catch {
      // try the next location
    }
  }
  return 'Linux';
}

export async function hostInfo(): Promise<Pick<SystemInfo, 'KernelVersion' | 'OperatingSystem' | 'OSType' | 'Architecture' | 'NCPU' | 'MemTotal' | 'Name'>> {
  return {
    KernelVersion: os.release(),
    OperatingSystem: await operatingSystem(),
    OSType: 'linux',
    Architecture: os.machine(),
    NCPU: os.availableParallelism(),
    MemTotal: os.totalmem(),
    Name: os.hostname(),
  };
}
