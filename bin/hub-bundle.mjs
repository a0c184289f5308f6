// `kaihub start` runs the hub from one module that esbuild bundles from src/ when it starts, instead of
// through tsx's loader: the loader keeps a thread with its own JavaScript engine for the life of the
// process (≈ 30 MB of memory: docs/decisions/0013-start-from-a-bundle.md), and transpiles with
// `keepNames`, which makes every named closure redefine its name. Still no build step between
// `npm install` and `npm start`: the bundle is made in a moment at each start, into this package's
// node_modules (where its packages resolve), and deleted once loaded. Stack traces point at the
// TypeScript lines (bin/stack-map.mjs: the source map's text is kept, and a stack mapped when read).
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { LineMap, mapStackTraces } from './stack-map.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * The source with every character beyond ASCII written as a `\uXXXX` escape. esbuild escapes them in
 * strings and names but leaves them in regular expressions (a few match Korean), and one such character
 * makes V8 keep the bundle's whole text — which it holds for as long as the hub runs — at two bytes a
 * character: 4 MB instead of 2. An escape means the same in a string, a comment or a pattern, with or
 * without the `u` flag (a surrogate pair escaped is still one code point with it); only a raw template
 * (`String.raw`) would differ, and the hub has none with such text. Done on each source as it is read,
 * not on the bundle: a 2 MB string and its bytes made and dropped at start leave malloc's main arena
 * ≈ 6 MB larger for good. Stack traces keep their lines; a column after such a character moves.
 */
const asciiOnly = (text) =>
  text.replace(/[^\0-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/**
 * Each module's `import.meta.url` is its own source file's, as when it runs unbundled: the hub finds
 * its workers and its shipped catalogue beside its sources.
 */
const ownImportMetaUrl = {
  name: 'own-import-meta-url',
  setup(build) {
    build.onLoad({ filter: /\.(ts|mjs)$/ }, (args) => {
      if (args.path.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
      const url = JSON.stringify(pathToFileURL(args.path).href);
      return {
        contents: asciiOnly(readFileSync(args.path, 'utf8').replaceAll('import.meta.url', url)),
        loader: args.path.endsWith('.ts') ? 'ts' : 'js',
        resolveDir: path.dirname(args.path),
      };
    });
  },
};

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

/** Bundles left by hubs killed while they started: a bundle is deleted as soon as it is loaded. */
function removeStaleBundles(dir) {
  for (const name of readdirSync(dir)) {
    const pid = Number(/^hub-(\d+)-[0-9a-f]+\.mjs(?:\.map)?$/.exec(name)?.[1]);
    if (pid && !alive(pid)) rmSync(path.join(dir, name), { force: true });
  }
}

/**
 * Builds the hub into one module and imports it (which runs `src/main.ts`; a test gives another entry).
 */
export async function runBundled(entry = path.join(ROOT, 'src', 'main.ts')) {
  const esbuild = await import('esbuild');
  const dir = path.join(ROOT, 'node_modules', '.cache', 'kaihub');
  mkdirSync(dir, { recursive: true });
  removeStaleBundles(dir);
  const outfile = path.join(dir, `hub-${process.pid}-${randomBytes(4).toString('hex')}.mjs`);
  try {
    await esbuild.build({
      entryPoints: [entry],
      outfile,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: `node${process.versions.node}`,
      packages: 'external',
      // a map file of its own, not inline: V8 keeps a module's whole text, so an inline map (1 MB of
      // base64) would stay in memory with it. Read below, not by Node (which would keep it parsed).
      sourcemap: 'external',
      sourcesContent: false,
      // No comments or indentation: V8 keeps a module's whole text for as long as it runs (functions
      // compile lazily from it) — 2.0 M characters instead of 2.4 M, one byte each (asciiOnly). Stack
      // traces still name the TypeScript lines.
      minifyWhitespace: true,
      logLevel: 'silent',
      plugins: [ownImportMetaUrl],
      // the semantics tsconfig.json asks for: imports as written, class fields defined
      tsconfigRaw: { compilerOptions: { verbatimModuleSyntax: true, useDefineForClassFields: true } },
    });
    // esbuild's service process would otherwise live as long as the hub
    await esbuild.stop();
    const map = JSON.parse(readFileSync(`${outfile}.map`, 'utf8'));
    const sources = map.sources.map((source) => path.resolve(dir, source));
    mapStackTraces(pathToFileURL(outfile).href, new LineMap(map.mappings, sources));
    await import(pathToFileURL(outfile).href);
  } finally {
    rmSync(outfile, { force: true });
    rmSync(`${outfile}.map`, { force: true });
  }
}
