// Upstream inputs with fail-over URLs (`a|b`), on the command line and in the config file:
// the same InputConfig either way, the first URL as its path, the others as fallbacks in order.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseOptions } from '../src/cli.js';

const A = 'http://origin-a.example:8080/live/x';
const B = 'http://origin-b.example:8080/live/x';
const C = 'https://origin-c.example/live/x';
const WANT = { name: 'x', path: A, paced: false, loop: false, fallbacks: [B, C] };

describe('an upstream input with fail-over URLs', () => {
  it('on the command line: name=a|b|c', async () => {
    const o = await parseOptions([`x=${A}|${B}|${C}`]);
    assert.deepEqual(o.inputs, [WANT]);
  });

  it('in the config file: input: "a|b|c", not taken for a file path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mkvcast-tier-'));
    const path = join(dir, 'edge.yaml');
    writeFileSync(path, `streams:\n  x:\n    input: "${A}|${B}|${C}"\n`);
    const o = await parseOptions(['--config', path]);
    assert.deepEqual(o.inputs, [WANT]);
  });

  it('a bad fail-over URL is refused, naming it', async () => {
    await assert.rejects(parseOptions([`x=${A}|ftp://nowhere/x`]), /ftp:\/\/nowhere\/x/);
  });
});
