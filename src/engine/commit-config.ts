/**
 * `docker commit`'s image config: Docker's NewChildImage over the container's image, with
 * the container's Config (after `--change`) as `config`, its original Config as
 * `container_config`, and a history entry whose `created_by` is the container's Cmd.
 * Serialised like the daemon (top-level keys sorted), so equal inputs give Docker's bytes.
 */
import { childImageConfig, serializeImageConfig, toContainerConfig, nowRfc3339Nano, hostArchitecture, type ImageConfigJson } from '../build/image-config.js';
import { DEFAULT_DOCKER_VERSION } from '../build/builder.js';
import type { ImageConfig } from '../images/image-store.js';
import type { ContainerConfig } from './api-types.js';

export function commitConfig(o: {
  parent: ImageConfig;
  containerId: string;
  containerConfig: ContainerConfig;
  config: ContainerConfig;
  diffId: string | undefined;
  author: string;
  comment: string;
}): Buffer {
  return serializeImageConfig(
    childImageConfig({
      parent: o.parent as unknown as ImageConfigJson,
      containerId: o.containerId,
      author: o.author,
      comment: o.comment,
      diffId: o.diffId,
      containerConfig: toContainerConfig(o.containerConfig),
      config: toContainerConfig(o.config),
      created: nowRfc3339Nano(),
      dockerVersion: DEFAULT_DOCKER_VERSION,
      defaultArchitecture: hostArchitecture(),
    }),
  );
}
