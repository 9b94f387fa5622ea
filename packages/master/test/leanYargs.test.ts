// The master parses its command line without loading yargs's help layout (cliui and
// string-width, whose Intl.Segmenters keep ICU's data resident for the master's life), and
// still prints the full help when asked. This file runs in a process of its own (node --test),
// so nothing has loaded yargs before it counts.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

/** Every Intl.Segmenter built from here on; string-width builds one as it is loaded. */
const segmenters: unknown[] = [];
const Segmenter = Intl.Segmenter;
Object.defineProperty(Intl, 'Segmenter', {
  value: class extends Segmenter {
    constructor(...args: ConstructorParameters<typeof Segmenter>) {
      super(...args);
      segmenters.push(this);
    }
  },
});

describe('the lean yargs', () => {
  it('parses a command line, a bad one too, without building any Intl.Segmenter', async () => {
    const { parseOptions } = await import('../src/cli.js');
    const clip = join(mkdtempSync(join(tmpdir(), 'mkvcast-lean-')), 'clip.webm');
    writeFileSync(clip, 'not parsed here');
    const options = await parseOptions([clip, '--edges', '3', '--max-delay', '0']);
    assert.equal(options.edges, 3);
    assert.equal(options.maxDelayMs, 0);
    assert.equal(options.inputs[0]?.path, clip);
    await assert.rejects(parseOptions(['--bogus']), /Unknown argument: bogus/);
    await assert.rejects(parseOptions(['--port']), /--port needs a value/);
    assert.equal(segmenters.length, 0, 'cliui or string-width was loaded');
  });

  it('stops where yargs would lay out help, and the full yargs lays it out', async () => {
    const { NeedsLayout, fullYargs, leanYargs } = await import('../src/leanYargs.js');
    const lean = await leanYargs();
    assert.throws(() => lean([]).option('edges', { type: 'number', describe: 'edge processes' }).getHelp(), NeedsLayout);
    const full = await fullYargs();
    const help = await full([]).option('edges', { type: 'number', describe: 'edge processes' }).getHelp();
    assert.match(help, /--edges\s+edge processes\s+\[number\]/);
    assert.ok(segmenters.length > 0, 'the full yargs loads string-width');
  });
});
