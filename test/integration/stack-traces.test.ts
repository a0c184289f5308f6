import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import { LineMap } from '../../bin/stack-map.mjs';

/**
 * `kaihub start` runs a bundle; its stack traces must still name the TypeScript lines, without Node
 * holding the parsed source map for the hub's life (bin/stack-map.mjs, decision 0033).
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ENTRY = path.join(ROOT, 'test', 'fixtures', 'stack-trace', 'entry.ts');

test('a bundled start names the TypeScript file, line and column in every frame of its own code', () => {
  const child = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { runBundled } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'bin', 'hub-bundle.mjs')).href)};
       await runBundled(${JSON.stringify(ENTRY)});`,
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  assert.equal(child.status, 0, child.stderr);
  const out = JSON.parse(child.stdout) as {
    stacks: string[];
    nodeError: string;
    sourceMapsEnabled: boolean | null;
  };
  const source = readFileSync(ENTRY, 'utf8').split('\n');
  const at = (mark: string, token: string) => {
    const line = source.findIndex((l) => l.includes(`// mark:${mark}`));
    return `${ENTRY}:${line + 1}:${source[line]!.indexOf(token) + 1}`;
  };
  const [made, thrown] = out.stacks as [string, string];
  assert.match(made, /^Error: made in inner\n/);
  assert.ok(made.includes(`at inner (${at('inner', 'new Error')})`), made);
  assert.ok(made.includes(`at outer (${at('outer', 'inner()')})`), made);
  assert.match(thrown, /^TypeError: thrown after an await\n/);
  assert.ok(thrown.includes(`at Thrower.later (${at('async', 'new TypeError')})`), thrown);
  // Node's own errors keep their code in the header, as Node writes it
  assert.match(out.nodeError, /^RangeError \[ERR_OUT_OF_RANGE\]: The value of "size" is out of range/);
  for (const stack of out.stacks)
    assert.doesNotMatch(stack, /hub-\d+-[0-9a-f]+\.mjs/, 'no bundle position left');
  assert.equal(out.sourceMapsEnabled, false, "Node's own source maps stay off: they keep the map parsed");
});

test("the lookup agrees with Node's own source map reader at every mapped place of the hub's bundle", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'kaihub-map-'));
  try {
    const outfile = path.join(dir, 'hub.mjs');
    await esbuild.build({
      entryPoints: [path.join(ROOT, 'src', 'main.ts')],
      outfile,
      bundle: true,
      platform: 'node',
      format: 'esm',
      packages: 'external',
      sourcemap: 'external',
      sourcesContent: false,
      minifyWhitespace: true,
      logLevel: 'silent',
    });
    const payload = JSON.parse(readFileSync(`${outfile}.map`, 'utf8'));
    const ours = new LineMap(payload.mappings, payload.sources);
    const node = new SourceMap(payload);
    const lines = readFileSync(outfile, 'utf8').split('\n');
    let compared = 0;
    // every 7th column of every line: places on a segment and between segments
    for (let line = 0; line < lines.length; line++) {
      for (let column = 0; column < lines[line]!.length; column += 7) {
        const theirs = node.findEntry(line, column) as {
          originalSource?: string;
          originalLine?: number;
          originalColumn?: number;
        };
        const mine = ours.lookup(line + 1, column + 1);
        if (theirs.originalSource === undefined) {
          assert.equal(mine, undefined, `${line + 1}:${column + 1}`);
          continue;
        }
        assert.ok(mine, `${line + 1}:${column + 1} is mapped by Node`);
        assert.equal(mine.source, theirs.originalSource);
        assert.deepEqual(
          [mine.line, mine.column],
          [theirs.originalLine! + 1, theirs.originalColumn! + 1],
          `${line + 1}:${column + 1}`,
        );
        compared++;
      }
    }
    assert.ok(compared > 100_000, `${compared} places compared`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
