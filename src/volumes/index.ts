/**
 * Volumes: the local volume store and service (`service.ts`), the local driver's rules
 * (`local-driver.ts`), container mount flag parsing and inspect entries (`mount-spec.ts`),
 * and list/prune filters (`filters.ts`).
 */
export * from './service.js';
export * from './mount-spec.js';
export { ANONYMOUS_LABEL, LOCAL_DRIVER, volumeNameError, optionsError } from './local-driver.js';
export type { VolumeFilters } from './filters.js';
