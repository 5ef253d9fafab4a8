import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  cleanPath, decodeHeaderBlock, encodeHeader, parsePaxRecords, type TarHeader,
} from '../../src/archive/tar-header.js';
import { InvalidArchiveError, InvalidArgumentError } from '../../src/errors.js';
import { readTarEntries } from '../../src/archive/tar-reader.js';
import { buildTar } from '../helpers/tar-builder.js';

function hdr(over: Partial<TarHeader>): TarHeader {
  return {
    name: 'x', linkname: '', typeflag: '0', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0,
    uname: '', gname: '', devmajor: 0, devminor: 0, ...over,
  };
}

// Header blocks as Go's archive/tar writes them (captured from the docker CLI's
// `context export`, which uses it): a 113-byte file "meta.json" 0644 and a directory "tls" 0700.
describe('tar-header: Go writer parity', () => {
  // The captured blocks, field by field, are easier to review than a 1 KiB hex blob.
  function goBlock(name: string, mode: string, size: string, chksum: string, type: string): Buffer {
    const b = Buffer.alloc(512);
    b.write(name, 0, 'latin1');
    b.write(`${mode}\0`, 100, 'latin1');
    b.write('0000000\0', 108, 'latin1');
    b.write('0000000\0', 116, 'latin1');
    b.write(`${size}\0`, 124, 'latin1');
    b.write('00000000000\0', 136, 'latin1');
    b.write(`${chksum}\0 `, 148, 'latin1');
    b.write(type, 156, 'latin1');
    b.write('ustar\x0000', 257, 'latin1');
    b.write('0000000\0', 329, 'latin1');
    b.write('0000000\0', 337, 'latin1');
    return b;
  }
  const cases: Array<{ what: string; header: TarHeader; block: Buffer }> = [
    { what: 'regular file', header: hdr({ name: 'meta.json', size: 113 }), block: goBlock('meta.json', '0000644', '00000000161', '011024', '0') },
    { what: 'directory', header: hdr({ name: 'tls', typeflag: '5', mode: 0o700 }), block: goBlock('tls', '0000700', '00000000000', '007716', '5') },
  ];
  for (const c of cases) {
    it(`encodes a ${c.what} byte for byte like Go`, () => {
      assert.equal(encodeHeader(c.header).toString('hex'), c.block.toString('hex'));
    });
    it(`decodes the Go ${c.what} block`, () => {
      const h = decodeHeaderBlock(c.block)!;
      assert.equal(h.name, c.header.name);
      assert.equal(h.mode, c.header.mode);
      assert.equal(h.size, c.header.size);
      assert.equal(h.typeflag, c.header.typeflag);
    });
  }
});

describe('tar-header: encode rules', () => {
  it('splits a long ASCII name into ustar prefix + name (longest prefix that fits)', () => {
    const name = `${'d'.repeat(60)}/${'e'.repeat(60)}/${'f'.repeat(50)}`;
    const b = encodeHeader(hdr({ name }));
    assert.equal(b.length, 512);
    assert.equal(b.toString('latin1', 0, 50), 'f'.repeat(50));
    assert.equal(b[50], 0);
    assert.equal(b.toString('latin1', 345, 345 + 121), `${'d'.repeat(60)}/${'e'.repeat(60)}`);
    assert.equal(decodeHeaderBlock(b)!.name, name);
  });

  it('uses PAX named <dir>/PaxHeaders.0/<base> when the name cannot be split', () => {
    const name = `dir/${'n'.repeat(120)}`;
    const b = encodeHeader(hdr({ name, mtime: 1700000000 }));
    assert.equal(b.length, 512 * 3);
    const pax = decodeHeaderBlock(b.subarray(0, 512))!;
    assert.equal(pax.typeflag, 'x');
    assert.equal(pax.name, `dir/PaxHeaders.0/${'n'.repeat(120)}`.slice(0, 100));
    assert.equal(pax.mode, 0);
    assert.equal(pax.mtime, 0);
    // The PAX block leaves devmajor/devminor empty (Go's writeRawFile), unlike entry blocks.
    assert.equal(b.subarray(329, 345).every((x) => x === 0), true);
    const data = b.subarray(512, 512 + pax.size).toString('latin1');
    // 6 (" path=") + 124 + 1 ("\n") = 131 bytes, plus its own 3 digits.
    assert.equal(data, `134 path=${name}\n`);
    const main = b.subarray(1024);
    assert.equal(main.toString('latin1', 0, 100), name.slice(0, 100));
    assert.equal(main.toString('latin1', 257, 263), 'ustar\0');
  });

  it('makes PAX record lengths self-inclusive across a digit boundary', () => {
    // " path=" + value + "\n" is 7 + len bytes; 93 → 100 + 3 digits = 103 (not 102).
    const value = 'v'.repeat(93);
    const data = encodeHeader(hdr({ name: value + '/' + 'w'.repeat(101) }))
      .subarray(512, 1024).toString('latin1');
    const rec = data.slice(0, data.indexOf('\n') + 1);
    assert.equal(Number(rec.slice(0, rec.indexOf(' '))), Buffer.byteLength(rec));
  });

  it('sorts PAX records by key and encodes xattrs as SCHILY.xattr', () => {
    const b = encodeHeader(hdr({
      name: 'bin/ping', size: 0, uid: 0o10000000,
      xattrs: new Map([['security.capability', Buffer.from([1, 0, 0, 2, 0x20, 0, 0, 0])]]),
    }));
    const size = decodeHeaderBlock(b.subarray(0, 512))!.size;
    const recs = parsePaxRecords(b.subarray(512, 512 + size));
    assert.deepEqual([...recs.keys()], ['SCHILY.xattr.security.capability', 'uid']);
    assert.equal(recs.get('uid')!.toString(), String(0o10000000));
    const main = decodeHeaderBlock(b.subarray(1024))!;
    assert.equal(main.uid, 0); // did not fit in octal: Go writes 0 in the ustar field
  });

  it('writes non-ASCII names via PAX with an ASCII-only ustar field', () => {
    const b = encodeHeader(hdr({ name: 'caf\u00e9.txt' }));
    assert.equal(b.length, 1536);
    const main = decodeHeaderBlock(b.subarray(1024))!;
    assert.equal(main.name, 'caf.txt');
    const recs = parsePaxRecords(b.subarray(512, 512 + decodeHeaderBlock(b.subarray(0, 512))!.size));
    assert.equal(recs.get('path')!.toString('utf8'), 'caf\u00e9.txt');
  });

  it('refuses headers Go refuses', () => {
    assert.throws(() => encodeHeader(hdr({ name: 'file/', typeflag: '0' })), InvalidArgumentError);
    assert.throws(() => encodeHeader(hdr({ typeflag: 'x' })), InvalidArgumentError);
  });

  it('round-trips through decode', () => {
    const h = hdr({ name: 'usr/bin/x', linkname: '', mode: 0o4755, uid: 1000, gid: 1000, size: 12345, mtime: 1600000000, uname: 'u', gname: 'g' });
    const d = decodeHeaderBlock(encodeHeader(h))!;
    assert.deepEqual({ ...d }, { ...h });
  });
});

describe('tar-header: decode', () => {
  it('verifies the checksum and accepts the signed variant', () => {
    const good = buildTar([{ name: 'f\u00ff', body: 'x' }]).subarray(0, 512);
    assert.ok(decodeHeaderBlock(good));
    const bad = Buffer.from(good);
    bad[0] ^= 1;
    assert.throws(() => decodeHeaderBlock(bad), InvalidArchiveError);
    // Old writers summed signed bytes; a block with high bytes exercises that path.
    const signed = Buffer.from(buildTar([{ name: 'x', body: '' }]).subarray(0, 512));
    signed.fill(0xff, 265, 270); // uname bytes ≥ 0x80
    let s = 0;
    for (let i = 0; i < 512; i++) s += i >= 148 && i < 156 ? 32 : (signed[i]! < 128 ? signed[i]! : signed[i]! - 256);
    signed.write(s.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
    assert.ok(decodeHeaderBlock(signed));
  });

  it('returns null for a zero block', () => assert.equal(decodeHeaderBlock(Buffer.alloc(512)), null));

  it('reads base-256 numbers and strips type bits from the mode', () => {
    const b = Buffer.from(buildTar([{ name: 'big', body: '' }]).subarray(0, 512));
    b.fill(0, 124, 136);
    b[124] = 0x80;
    b.writeUIntBE(9_000_000_000, 130, 6);
    b.write('0100755\0', 100, 'latin1');
    b.fill(0x20, 148, 156);
    let s = 0;
    for (const x of b) s += x;
    b.write(s.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
    const h = decodeHeaderBlock(b)!;
    assert.equal(h.size, 9_000_000_000);
    assert.equal(h.mode, 0o755);
  });

  it('keeps non-UTF-8 names as raw bytes', () => {
    const b = Buffer.from(buildTar([{ name: 'x', body: '' }]).subarray(0, 512));
    b[0] = 0xff;
    b.fill(0x20, 148, 156);
    let s = 0;
    for (const x of b) s += x;
    b.write(s.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
    const h = decodeHeaderBlock(b)!;
    assert.deepEqual(h.nameRaw, Buffer.from([0xff]));
    assert.equal(encodeHeader(h).subarray(0, 512).toString('hex').length > 0, true);
  });
});

describe('tar-header: GNU tar output', () => {
  it('reads long names, long links, PAX and GNU formats written by the tar binary', async (t) => {
    if (spawnSync('tar', ['--version']).status !== 0) return t.skip('GNU tar is not installed');
    const dir = mkdtempSync(join(tmpdir(), 'strata-hdr-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const src = join(dir, 'src');
    const long = `${'a'.repeat(80)}/${'b'.repeat(90)}`;
    mkdirSync(join(src, long), { recursive: true });
    writeFileSync(join(src, long, 'file'), 'content\n');
    symlinkSync(`../${'t'.repeat(150)}`, join(src, 'lnk'));
    for (const format of ['gnu', 'posix', 'ustar']) {
      const out = join(dir, `${format}.tar`);
      const r = spawnSync('tar', ['-C', src, `--format=${format}`, '-cf', out, '.'], { encoding: 'utf8' });
      if (format === 'ustar') {
        // ustar cannot store a 150-byte link target; GNU tar says so and skips the entry.
        assert.notEqual(r.status, null);
      } else {
        assert.equal(r.status, 0, r.stderr);
      }
      const names: string[] = [];
      const links: string[] = [];
      for await (const e of readTarEntries([readFileSync(out)])) {
        names.push(e.header.name);
        if (e.header.typeflag === '2') links.push(e.header.linkname);
        for await (const _ of e.body) void _;
      }
      assert.ok(names.includes(`./${long}/file`), `${format}: ${names.join(',')}`);
      if (format !== 'ustar') assert.deepEqual(links, [`../${'t'.repeat(150)}`]);
    }
  });
});

describe('cleanPath', () => {
  const table: Array<[string, string]> = [
    ['', '.'], ['a/', 'a'], ['./a', 'a'], ['a//b/./c/..', 'a/b'], ['../x', '../x'], ['a/../../x', '../x'],
    ['/../x', '/x'], ['/', '/'], ['//a', '/a'],
  ];
  for (const [input, want] of table) it(`${JSON.stringify(input)} → ${want}`, () => assert.equal(cleanPath(input), want));
});
