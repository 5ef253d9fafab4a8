/**
 * Dockerfile parsing and planning as Docker's classic builder does it, table-driven: parser
 * directives, continuations, comments, exec vs shell form, variable substitution, ARG
 * scoping, stage naming, and errors that name the line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { ShellLex, parseDockerfile, planBuild } from '../../src/build/index.js';

test('parser: directives, continuations, comments, exec and shell forms, line numbers', () => {
  const r = parseDockerfile('# escape=`\nFROM busybox\n# a comment\nRUN echo a `\n  b\nCMD ["x","y"]\n');
  assert.equal(r.escapeToken, '`');
  assert.deepEqual(
    r.nodes.map((n) => [n.keyword, n.args, n.json, n.startLine, n.endLine]),
    [['from', ['busybox'], false, 2, 2], ['run', ['echo a   b'], false, 4, 5], ['cmd', ['x', 'y'], true, 6, 6]],
  );
  // Without the directive the default escape is a backslash, and a later `# escape=` is a comment.
  const d = parseDockerfile('FROM busybox\n# escape=`\nRUN echo a \\\n b\n');
  assert.equal(d.escapeToken, '\\');
  assert.deepEqual(d.nodes.map((n) => n.args), [['busybox'], ['echo a  b']]);
  // An invalid JSON array is the shell form.
  assert.deepEqual(parseDockerfile('FROM a\nCMD [not json]\n').nodes[1]!.json, false);
});

test('variable substitution like Docker (defaults, alternatives, escapes)', () => {
  const lex = new ShellLex();
  const env = ['SET=value', 'EMPTY='];
  const cases: Array<[string, string]> = [
    ['$SET', 'value'],
    ['${SET}', 'value'],
    ['${UNSET:-def}', 'def'],
    ['${EMPTY:-def}', 'def'],
    ['${SET:-def}', 'value'],
    ['${SET:+alt}', 'alt'],
    ['${UNSET:+alt}', ''],
    ['\\$SET', '$SET'],
    ["'$SET'", '$SET'],
    ['"$SET"', 'value'],
    ['pre-${SET}-post', 'pre-value-post'],
  ];
  for (const [word, expected] of cases) assert.equal(lex.processWord(word, env), expected, word);
});

test('planning: meta ARGs and --build-arg, stage names, step count', () => {
  const p = planBuild('ARG V=1\nFROM busybox AS one\nENV A=$V\nFROM one\nLABEL x="y z"\n', { buildArgs: { V: '2' } });
  assert.equal(p.totalSteps, 5);
  assert.deepEqual(p.stages.map((s) => s.name), ['one', '']);
  const t = planBuild('FROM busybox AS a\nRUN true\nFROM busybox AS b\nRUN false\n', { target: 'a' });
  assert.deepEqual(t.stages.map((s) => s.name), ['a']);
  assert.throws(() => planBuild('FROM busybox\n', { target: 'nope' }), /failed to reach build target nope in Dockerfile/);
});

test('errors name the line, with Docker\'s words', () => {
  const cases: Array<[string, RegExp]> = [
    ['FROM busybox\nBOGUS x\n', /dockerfile parse error line 2: unknown instruction: BOGUS$/],
    ['FROM busybox\nENV\n', /dockerfile parse error line 2: ENV requires at least one argument$/],
    ['FROM busybox\nCOPY a\n', /dockerfile parse error line 2: COPY requires at least two arguments/],
    ['RUN echo\n', /no build stage in current context/],
  ];
  for (const [text, expected] of cases) assert.throws(() => planBuild(text), expected, JSON.stringify(text));
});
