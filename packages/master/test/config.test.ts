// The config file: keys from the option table, one-line messages naming file, line and key,
// the example file kept valid and complete, CLI over file, and what a reload would change.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NUMBER_RULES, OPTIONS, parseOptions } from '../src/cli.js';
import { ConfigError, keyOf, parseConfig, readConfigFile, type OptionShape } from '../src/configFile.js';
import { diffOptions } from '../src/reload.js';
import type { MasterOptions } from '../src/master.js';

const EXAMPLE = fileURLToPath(new URL('../../../../docs/mkvcast.example.yaml', import.meta.url));

/** Parses `text` as mkvcast.yaml against the real option table; the ConfigError's message, or null. */
function problem(text: string, table: Record<string, OptionShape> = OPTIONS): string | null {
  try {
    parseConfig(text, '/somewhere/mkvcast.yaml', table, NUMBER_RULES);
    return null;
  } catch (err) {
    assert.ok(err instanceof ConfigError, `not a ConfigError: ${String(err)}`);
    assert.equal(err.code, 'MKV_ERR_CONFIG');
    assert.doesNotMatch(err.message, /\n/, 'one line');
    return err.message;
  }
}

describe('config keys from flags', () => {
  it('top-level camelCase; sections as section.snake_key', () => {
    assert.equal(keyOf('edges'), 'edges');
    assert.equal(keyOf('clients-per-edge'), 'clientsPerEdge');
    assert.equal(keyOf('buffer-mb'), 'bufferMb');
    assert.equal(keyOf('log-format'), 'logFormat');
    assert.equal(keyOf('api-token'), 'api.token');
    assert.equal(keyOf('hooks-on-play'), 'hooks.on_play');
    assert.equal(keyOf('jwt-jwks'), 'jwt.jwks');
  });

  it('an option added to the table has a key at once, sections included', () => {
    const table = { ...OPTIONS, 'hooks-on-play': { type: 'string' }, 'hooks-timeout': { type: 'number' } } as Record<string, OptionShape>;
    const file = parseConfig('hooks:\n  on_play: http://127.0.0.1/play\n  timeout: 3\n', 'x.yaml', table);
    assert.deepEqual(file.options, { 'hooks-on-play': 'http://127.0.0.1/play', 'hooks-timeout': 3 });
    assert.equal(problem('hooks:\n  on_paly: x\n', table), 'mkvcast.yaml:2: unknown key hooks.on_paly (did you mean hooks.on_play?)');
  });
});

describe('config file messages: file:line: key problem', () => {
  it('an unknown key, with a close one suggested', () => {
    assert.equal(problem('port: 8080\nedgez: 2\n'), 'mkvcast.yaml:2: unknown key edgez (did you mean edges?)');
    assert.equal(problem('port: 8080\n\nfrobnicate: 2\n'), 'mkvcast.yaml:3: unknown key frobnicate');
  });

  it('an unknown per-stream key', () => {
    assert.equal(
      problem('streams:\n  cam:\n    input: a.webm\n    lop: true\n'),
      'mkvcast.yaml:4: unknown key streams.cam.lop (did you mean streams.cam.loop?)',
    );
  });

  it('a wrong type', () => {
    assert.equal(
      problem('port: 8080\nedges: 2\nstreams:\n  news: { input: news.webm }\n  cam:\n    input: "tcp://0.0.0.0:12345"\n    loop: yes\n'),
      'mkvcast.yaml:7: streams.cam.loop must be true or false, not "yes"',
    );
    assert.equal(problem('edges: two\n'), 'mkvcast.yaml:1: edges must be a whole number ≥ 1, not "two"');
    assert.equal(problem('publishKey: 1234\n'), 'mkvcast.yaml:1: publishKey must be text, not the number 1234 (quote it: "1234")');
    assert.equal(problem('start: oldest\n'), 'mkvcast.yaml:1: start must be one of "newest", "next", not "oldest"');
  });

  it('a number out of its range', () => {
    assert.equal(problem('port: 8080\nedges: 0\n'), 'mkvcast.yaml:2: edges must be a whole number ≥ 1, not 0');
    assert.equal(problem('port: 70000\n'), 'mkvcast.yaml:1: port must be a whole number from 0 to 65535, not 70000');
    assert.equal(problem('grace: -1\n'), 'mkvcast.yaml:1: grace must be a number ≥ 0, not -1');
    assert.equal(problem('edges: 1000\n'), 'mkvcast.yaml:1: edges must be at most 256, not 1000');
  });

  it('YAML that does not parse, a duplicate key, a bad stream name, a section without input', () => {
    assert.match(problem('port: [8080\n') ?? '', /^mkvcast\.yaml:\d+: not valid YAML: /);
    assert.match(problem('port: 1\nport: 2\n') ?? '', /^mkvcast\.yaml:2: not valid YAML: .*unique/i);
    assert.equal(problem('streams:\n  a/b: { input: x.webm }\n'), "mkvcast.yaml:2: stream name 'a/b' may use only letters, digits and . _ ~ -");
    assert.equal(problem('streams:\n  x: { loop: true, publishKey: k }\n'), 'mkvcast.yaml:2: streams.x has loop or realtime but no input');
    assert.equal(problem('config: other.yaml\n'), 'mkvcast.yaml:1: unknown key config');
    // The key would be checked by nothing: refused, saying what to do instead.
    assert.match(
      problem('streams:\n  cam: { input: "tcp://0.0.0.0:1", publishKey: k }\n') ?? '',
      /^mkvcast\.yaml:2: streams\.cam has an input and a publishKey, and nothing would check the key: .*bind it to 127\.0\.0\.1.*only a publishKey$/,
    );
  });

  it('an empty file is valid', () => {
    assert.equal(problem(''), null);
    assert.equal(problem('# nothing\n'), null);
  });
});

describe('docs/mkvcast.example.yaml', () => {
  it('parses and validates', () => {
    const file = readConfigFile(EXAMPLE, OPTIONS, NUMBER_RULES);
    assert.ok(file.streams.length > 0, 'it shows a stream section');
  });

  it('names every option of the table, with its default where it has one', () => {
    const text = readFileSync(EXAMPLE, 'utf8');
    for (const [flag, option] of Object.entries(OPTIONS as Record<string, OptionShape & { default?: unknown }>)) {
      if (flag === 'config') continue;
      const key = keyOf(flag);
      const [section, leaf] = key.includes('.') ? key.split('.') : [null, key];
      assert.match(text, new RegExp(`^\\s*(#\\s*)?${leaf}:`, 'm'), `${key} (--${flag}) is missing from the example`);
      if (section) assert.match(text, new RegExp(`^(#\\s*)?${section}:`, 'm'), `section ${section} is missing from the example`);
      if (option.default !== undefined && flag !== 'edges') {
        assert.match(text, new RegExp(`^\\s*(#\\s*)?${leaf}:\\s*${String(option.default)}\\b`, 'm'), `${key}'s default ${String(option.default)} is not shown`);
      }
    }
  });
});

describe('parseOptions with --config', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mkvcast-config-'));
  writeFileSync(join(dir, 'news.webm'), 'not read here');
  const write = (text: string): string => {
    const path = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(path, text);
    return path;
  };

  it('file values apply, command-line options win, inputs are relative to the file', async () => {
    const path = write('edges: 3\nclientsPerEdge: 8\nmaxLag: 4\nstreams:\n  news: { input: news.webm, loop: true }\n  cam: { publishKey: s3cret }\n');
    const o = await parseOptions(['--config', path, '--edges', '2']);
    assert.equal(o.edges, 2, 'the command line wins');
    assert.equal(o.clientsPerEdge, 8);
    assert.equal(o.maxLagMs, 4000);
    assert.deepEqual(o.inputs, [{ name: 'news', path: join(dir, 'news.webm'), paced: true, loop: true }]);
    assert.deepEqual(o.publishKeys, { cam: 's3cret' });
    assert.equal(o.configFile, path);
  });

  it('a stream whose file is missing names the line', async () => {
    const path = write('streams:\n  news: { input: news.webm }\n  gone: { input: nowhere.webm }\n');
    await assert.rejects(parseOptions(['--config', path]), (err: Error) => {
      assert.match(err.message, /^c\w+\.yaml:3: streams\.gone\.input: cannot read .*nowhere\.webm: no such file$/);
      return true;
    });
  });

  it('a missing config file', async () => {
    await assert.rejects(parseOptions(['--config', join(dir, 'none.yaml')]), /cannot read config .*none\.yaml: no such file/);
  });

  it('--edges abc says what was expected', async () => {
    await assert.rejects(parseOptions(['--edges', 'abc']), { message: '--edges must be a whole number ≥ 1, not abc' });
    await assert.rejects(parseOptions(['--slow-timeout=-2']), { message: '--slow-timeout must be a number ≥ 0, not -2' });
  });
});

describe('what a reload changes', () => {
  const base: MasterOptions = {
    inputs: [
      { name: 'a', path: '/a.webm', paced: true, loop: true },
      { name: 'b', path: '/b.webm', paced: true, loop: true },
      { name: 'r', path: '/r.webm', paced: true, loop: true },
    ],
    publishKey: null,
    publishKeys: {},
    configFile: 'x.yaml',
    ffmpeg: null,
    graceMs: 10_000,
    idleTimeoutMs: 15_000,
    maxPublished: 64,
    edges: 1,
    clientsPerEdge: 16,
    host: '127.0.0.1',
    port: 8080,
    bufferMs: 10_000,
    bufferBytes: 1 << 26,
    burstMs: 0,
    startMode: 'newest',
    maxDelayMs: 50,
    playerBacklogBytes: 1 << 21,
    maxLagMs: 2000,
    slowTimeoutMs: 10_000,
    logLevel: 'info',
    logFormat: 'json',
  };

  it('streams added, removed and given a new input; options changed; restart-only ones named', () => {
    const next: MasterOptions = {
      ...base,
      inputs: [base.inputs[0]!, { name: 'r', path: '/r2.webm', paced: true, loop: true }, { name: 'c', path: '/c.webm', paced: true, loop: false }],
      publishKeys: { cam: 'k' },
      maxLagMs: 3000,
      edges: 2,
      port: 9090,
    };
    const diff = diffOptions(base, next);
    assert.deepEqual(diff.added.map((i) => i.name), ['c']);
    assert.deepEqual(diff.removed, ['b']);
    assert.deepEqual(diff.replaced.map((i) => i.name), ['r']);
    assert.deepEqual(diff.changed.sort(), ['edges', 'maxLag', 'streams.*.publishKey']);
    assert.deepEqual(diff.needsRestart, ['port']);
  });

  it('the same options: nothing', () => {
    const diff = diffOptions(base, structuredClone(base));
    assert.deepEqual(diff, { added: [], removed: [], replaced: [], changed: [], needsRestart: [] });
  });
});
