import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);

let bundled: URL | undefined;

/**
 * The journal applier (journal-applier.ts and the modules it uses) as one plain-JavaScript module, built
 * by esbuild once per process, for its worker thread. A worker does not inherit the main thread's
 * TypeScript loader; registering tsx in it again cost ≈ 28 MB of memory (a loader thread of its own),
 * which 2,000 open streams could not spare (docs/benchmarks.md). Packages stay outside the bundle; the
 * one it needs (libsql, a native addon) is imported by absolute path, since a `data:` module cannot
 * resolve bare names.
 */
export function journalApplierModule(): URL {
  if (bundled) return bundled;
  const esbuild = require('esbuild') as typeof import('esbuild');
  const entry = fileURLToPath(new URL('./journal-applier.ts', import.meta.url));
  const { outputFiles } = esbuild.buildSync({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: `node${process.versions.node}`,
    packages: 'external',
    write: false,
    // the semantics tsconfig.json asks for: imports as written, class fields defined
    tsconfigRaw: { compilerOptions: { verbatimModuleSyntax: true, useDefineForClassFields: true } },
  });
  // buildSync keeps a worker thread and esbuild's service process alive for the next call: this was
  // the only one (≈ 15 MB of the hub's memory, and another process)
  void esbuild.stop();
  const libsql = pathToFileURL(require.resolve('libsql')).href;
  const code = outputFiles[0]!.text.replaceAll(/from\s+"libsql"/g, `from ${JSON.stringify(libsql)}`);
  if (/from\s+"(?!node:|file:)[^"]+"/.test(code))
    throw new Error('the journal applier bundle imports a package other than libsql');
  bundled = new URL(`data:text/javascript,${encodeURIComponent(code)}`);
  return bundled;
}
