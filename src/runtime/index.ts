/** The container runtime: OCI spec generation, runc, the per-container monitor, logs, state. */
export * from './spec.js';
export { resolveUser, resolveInRoot, type ResolvedUser } from './user.js';
export * from './runc.js';
export * from './monitor.js';
export * from './logs.js';
export * from './state.js';
