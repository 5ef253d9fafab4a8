/** The Go text/template subset behind `--format`, checked against Go's documented output. */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { render } from '../../src/cli/format.js';
import { Template, TemplateError, strictContext } from '../../src/cli/template.js';

const data = {
  ID: 'abc',
  Repository: 'busybox',
  Tag: 'latest',
  Config: { Env: ['A=1', 'B=2'], Cmd: null, Labels: { b: '2', a: '<1>' } },
  RootFS: { Type: 'layers', Layers: ['sha256:1', 'sha256:2'] },
  Size: 1985698,
  Empty: [],
  Nested: { Deep: { Value: 'd' } },
};

const cases: Array<[string, string]> = [
  ['{{.ID}}', 'abc'],
  ['{{.Repository}}:{{.Tag}}', 'busybox:latest'],
  ['{{.Config.Env}}', '[A=1 B=2]'],
  ['{{.Size}}', '1985698'],
  ['{{.Config.Cmd}}', '<nil>'],
  ['{{.Missing}}', '<no value>'],
  ['{{json .RootFS}}', '{"Type":"layers","Layers":["sha256:1","sha256:2"]}'],
  ['{{json .Config.Labels}}', '{"b":"2","a":"<1>"}'],
  ['{{.Config.Labels}}', 'map[a:<1> b:2]'],
  ['{{index .Config.Labels "a"}}', '<1>'],
  ['{{index .RootFS.Layers 1}}', 'sha256:2'],
  ['{{join .Config.Env ","}}', 'A=1,B=2'],
  ['{{range .RootFS.Layers}}[{{.}}]{{end}}', '[sha256:1][sha256:2]'],
  ['{{range $i, $l := .RootFS.Layers}}{{$i}}={{$l}} {{end}}', '0=sha256:1 1=sha256:2 '],
  ['{{range .Empty}}x{{else}}none{{end}}', 'none'],
  ['{{if .Empty}}yes{{else if .ID}}id{{else}}no{{end}}', 'id'],
  ['{{if eq .Tag "latest" "x"}}L{{end}}', 'L'],
  ['{{if and .ID (not .Empty)}}ok{{end}}', 'ok'],
  ['{{with .Nested.Deep}}{{.Value}}{{end}}', 'd'],
  ['{{$x := .Tag}}{{$x}}-{{$.ID}}', 'latest-abc'],
  ['{{println .ID}}', 'abc\n'],
  ['{{println}}', '\n'],
  ['{{printf "%-6s|%5d|%q" .ID .Size .Tag}}', 'abc   |1985698|"latest"'],
  ['{{len .RootFS.Layers}} {{len .ID}}', '2 3'],
  ['{{upper .ID}} {{lower "AB"}} {{title "hello world"}}', 'ABC ab Hello World'],
  ['{{split "a,b" ","}}', '[a b]'],
  ['{{.ID | upper | printf "<%s>"}}', '<ABC>'],
  ['{{(index .RootFS.Layers 0) | len}}', '8'],
  ['{{(.Nested).Deep.Value}}', 'd'],
  ['a {{- " b " -}} c', 'a b c'],
  ['{{/* a comment */}}x', 'x'],
  ['{{range .RootFS.Layers}}{{if eq . "sha256:2"}}{{break}}{{end}}{{.}}{{end}}', 'sha256:1'],
  ['{{range .RootFS.Layers}}{{if eq . "sha256:1"}}{{continue}}{{end}}{{.}}{{end}}', 'sha256:2'],
  ['{{truncate .Repository 4}}|{{pad .ID 1 2}}|', 'busy| abc  |'],
  ['{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}', 'a=<1>;b=2;'],
  ['{{"x\\ty"}}', 'x\ty'],
  ['{{`raw\\n`}}', 'raw\\n'],
];

test('template table', () => {
  for (const [src, want] of cases) assert.equal(Template.parse(src).execute(data), want, src);
});

test('parse and execution errors read like Go’s', () => {
  for (const bad of ['{{.ID', '{{if .ID}}x', '{{end}}', '{{nosuchfn .ID}}', '{{"unterminated}}']) {
    assert.throws(() => Template.parse(bad).execute(data), TemplateError, bad);
  }
  const ctx = strictContext({ ID: 'x' }, '*formatter.imageContext');
  assert.throws(() => Template.parse('{{.Nope}}').execute(ctx),
    /^TemplateError: template: :1:2: executing "" at <\.Nope>: can't evaluate field Nope in type \*formatter\.imageContext$/);
  assert.throws(() => Template.parse('{{.ID 1}}').execute(data), /can't give argument to non-function/);
});

test('json escapes HTML only for docker formatter contexts', () => {
  const ctx = strictContext({ Digest: '<none>' }, 'ctx');
  assert.equal(Template.parse('{{json .}}').execute(ctx), '{"Digest":"\\u003cnone\\u003e"}');
  assert.equal(Template.parse('{{json .}}').execute({ Digest: '<none>' }), '{"Digest":"<none>"}');
});

test('render: table formats get a header and tabwriter alignment; others do not', () => {
  const rows = [strictContext({ ID: 'abc', Tag: 'latest' }, 'c'), strictContext({ ID: 'defghijklmnop', Tag: '1' }, 'c')];
  const header = { ID: 'IMAGE ID', Tag: 'TAG' };
  assert.equal(render('table {{.ID}}\t{{.Tag}}', rows, header),
    'IMAGE ID        TAG\nabc             latest\ndefghijklmnop   1\n');
  assert.equal(render('table {{.ID}}\\t{{json .Tag}}', rows, header), 'IMAGE ID        TAG\nabc             "latest"\ndefghijklmnop   "1"\n');
  assert.equal(render('{{.ID}}\t{{.Tag}}', rows, header), 'abc\tlatest\ndefghijklmnop\t1\n');
  assert.equal(render('table {{.ID}}', [], header), 'IMAGE ID\n');
  assert.throws(() => render('{{.ID', rows, header), /^FormatError: Template parsing error: template: :1: /);
});
