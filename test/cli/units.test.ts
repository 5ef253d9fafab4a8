/** docker's human units, times and tabwriter layout. */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { tabwrite } from '../../src/cli/tabwriter.js';
import { ellipsis, goG, humanDuration, humanSize, rfc3339Local, truncateId } from '../../src/cli/units.js';

test('humanSize is go-units HumanSize (decimal, %.Ng)', () => {
  const cases: Array<[number, number, string]> = [
    [0, 3, '0B'], [3, 3, '3B'], [999, 3, '999B'], [1000, 3, '1kB'], [1985698, 3, '1.99MB'], [1985698, 4, '1.986MB'],
    [1985701, 4, '1.986MB'], [999_999, 3, '1e+03kB'], [1_500_000_000, 4, '1.5GB'], [123_456, 4, '123.5kB'], [7_450_000, 3, '7.45MB'],
  ];
  for (const [n, p, want] of cases) assert.equal(humanSize(n, p), want, `${n} @${p}`);
  assert.equal(goG(0.5, 3), '0.5');
  assert.equal(goG(1234567, 3), '1.23e+06');
});

test('humanDuration is go-units HumanDuration', () => {
  const cases: Array<[number, string]> = [
    [0.5, 'Less than a second'], [1, '1 second'], [59, '59 seconds'], [60, 'About a minute'], [119, 'About a minute'],
    [120, '2 minutes'], [3599, '59 minutes'], [3600, 'About an hour'], [5399, 'About an hour'], [5400, '2 hours'],
    [47 * 3600, '47 hours'], [48 * 3600, '2 days'], [13 * 86400, '13 days'], [14 * 86400, '2 weeks'], [59 * 86400, '8 weeks'],
    [60 * 86400, '2 months'], [729 * 86400, '24 months'], [730 * 86400, '2 years'], [1e12, '292 years'],
  ];
  for (const [s, want] of cases) assert.equal(humanDuration(s), want, String(s));
});

test('ids, ellipsis, RFC 3339', () => {
  assert.equal(truncateId('sha256:8ce64cf38efba802b0543956a3bf0c9c'), '8ce64cf38efb');
  assert.equal(ellipsis('/bin/sh -c #(nop) ADD file:26d3434f10869cf1fa2ceee598f1cabc1f24341f in /', 45), '/bin/sh -c #(nop) ADD file:26d3434f10869cf1f…');
  assert.equal(ellipsis('short', 45), 'short');
  if (new Date(0).getTimezoneOffset() === 0) assert.equal(rfc3339Local(1_700_000_000), '2023-11-14T22:13:20Z');
});

test('tabwrite matches Go tabwriter(minwidth 10, padding 3)', () => {
  assert.equal(tabwrite('REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\nbusybox\tlatest\t8ce64cf38efb\t6 months ago\t1.99MB\n'),
    'REPOSITORY   TAG       IMAGE ID       CREATED        SIZE\nbusybox      latest    8ce64cf38efb   6 months ago   1.99MB\n');
  // An empty last cell leaves the padding of the column before it (docker history's COMMENT).
  assert.equal(tabwrite('SIZE\tCOMMENT\n0B\t\n'), 'SIZE      COMMENT\n0B        \n');
  // Column blocks: a line with fewer cells ends the block above it.
  assert.equal(tabwrite('a\tb\tc\nlonger-cell-here\tb\nx\ty\tz\n'),
    'a                  b         c\nlonger-cell-here   b\nx                  y         z\n');
  assert.equal(tabwrite('résumé\tx\n'), 'résumé    x\n');
});
