/**
 * Performs the mounts that drivers describe as data (see drivers/driver.ts `Mount`).
 * Implementation owned by the native/sys work; this file fixes the contract.
 */
import type { Mount } from '../drivers/driver.js';

export type { Mount };

/**
 * Mounts `mounts` at `target` in order. For overlay, when the option string would exceed a
 * page, absolute paths are rewritten relative to their longest common directory and the
 * mount is done with that directory as cwd (native `mount(..., cwd)`), as Docker does.
 * A bind mount whose source equals target is skipped (vfs snapshots need no mount).
 */
export declare function mountAll(mounts: readonly Mount[], target: string): Promise<void>;

/** umount2(target, MNT_DETACH when `detach`); EINVAL (not mounted) is ignored. */
export declare function unmount(target: string, options?: { detach?: boolean }): Promise<void>;

/** Mount points at or below `dir`, deepest first, read from /proc/self/mountinfo. */
export declare function mountsUnder(dir: string): Promise<string[]>;
