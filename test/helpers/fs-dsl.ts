/**
 * Declarative filesystem fixtures for every test: `applyFs(dir, createFile(...), mkdir(...),
 * remove(...), rename(...), symlink(...), hardlink(...), chmod(...), chown(...),
 * setXattr(...), mknod(...), setTimes(...))`, and `snapshotTree(dir)` / `assertSameTree`
 * to compare trees. See src/drivers/testsuite/fs-dsl.ts for the contract of each operation;
 * the implementation lives there because the driver conformance suite (under src/) uses it.
 */
export * from '../../src/drivers/testsuite/fs-dsl.js';
