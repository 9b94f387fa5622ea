import { notStrictEqual, strictEqual } from 'node:assert';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { inspect } from 'node:util';
import type yargs from 'yargs';

/**
 * yargs without its help layout, and the full yargs when help is printed.
 *
 * yargs's Node entry loads cliui and string-width as it is imported. They build
 * `Intl.Segmenter`s and compile Unicode tables, which pulls in ICU's data from the node
 * binary. That kept about 3.5 MiB of the master's private memory resident (a fifth of it
 * once idle) for its whole life, for a help screen printed only on `--help`.
 *
 * So the master parses with yargs built from yargs's own factory. The platform layer is the
 * same as yargs's Node entry (`lib/platform-shims/esm.mjs`), except for those two. If yargs
 * asks for either, parsing starts again with the full yargs.
 */

type Yargs = typeof yargs;

/** Thrown by the lean yargs where it would lay out help: parse again with the full one. */
export class NeedsLayout extends Error {
  constructor() {
    super('yargs needs its help layout');
  }
}

const needsLayout = (): never => {
  throw new NeedsLayout();
};

/** What `import()` of a CommonJS or ES module gives: its default export. */
type Loaded<T> = { default: T };

let lean: Promise<Yargs> | null = null;
let full: Promise<Yargs> | null = null;

/** yargs without cliui and string-width (see above). */
export function leanYargs(): Promise<Yargs> {
  lean ??= buildLean();
  return lean;
}

/** yargs as its package exports it, help layout included. */
export function fullYargs(): Promise<Yargs> {
  full ??= import('yargs').then((m) => m.default);
  return full;
}

async function buildLean(): Promise<Yargs> {
  // yargs's own files and dependencies, found from where yargs is, whatever the hoisting.
  const entry = createRequire(import.meta.url).resolve('yargs');
  const fromYargs = createRequire(entry);
  const own = (file: string): string => new URL(file, pathToFileURL(entry)).href;
  const dependency = (name: string): string => pathToFileURL(fromYargs.resolve(name)).href;
  const [factory, argvBin, parser, y18n, findUp, callerFile] = await Promise.all([
    import(own('./build/lib/yargs-factory.js')) as Promise<{ YargsFactory: (shim: unknown) => Yargs }>,
    import(own('./build/lib/utils/process-argv.js')) as Promise<{ getProcessArgvBin: () => string }>,
    import(dependency('yargs-parser')) as Promise<Loaded<unknown>>,
    import(dependency('y18n')) as Promise<Loaded<(options: object) => unknown>>,
    import(dependency('escalade/sync')) as Promise<Loaded<unknown>>,
    import(dependency('get-caller-file')) as Promise<Loaded<(position: number) => string>>,
  ]);
  const yargsRoot = dirname(entry);
  return factory.YargsFactory({
    assert: { notStrictEqual, strictEqual },
    cliui: needsLayout,
    findUp: findUp.default,
    getEnv: (key: string) => process.env[key],
    inspect,
    getProcessArgvBin: argvBin.getProcessArgvBin,
    mainFilename: yargsRoot.substring(0, yargsRoot.lastIndexOf('node_modules')) || process.cwd(),
    Parser: parser.default,
    path: { basename, dirname, extname, relative, resolve, join },
    process: {
      argv: () => process.argv,
      cwd: process.cwd,
      emitWarning: (warning: string, type: string) => process.emitWarning(warning, type),
      execPath: () => process.execPath,
      exit: (code: number) => process.exit(code),
      nextTick: process.nextTick,
      stdColumns: typeof process.stdout.columns !== 'undefined' ? process.stdout.columns : null,
    },
    readFileSync,
    readdirSync,
    require: fromYargs,
    getCallerFile: () => {
      const file = callerFile.default(3);
      return file.startsWith('file://') ? fileURLToPath(file) : file;
    },
    stringWidth: needsLayout,
    y18n: y18n.default({ directory: join(yargsRoot, 'locales'), updateFiles: false }),
  });
}
