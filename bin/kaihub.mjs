#!/usr/bin/env node
// `kaihub start` runs the hub bundled at start (bin/hub-bundle.mjs); the other commands run the
// TypeScript sources through tsx's loader. No build step between `npm install` and `npm start`.
const command = process.argv[2];
let bundled = false;
if (command === 'start' && process.env.KAIHUB_NO_BUNDLE !== '1') {
  try {
    const { runBundled } = await import('./hub-bundle.mjs');
    await runBundled();
    bundled = true;
  } catch (error) {
    // a read-only install or a missing esbuild: the loader runs the same sources, only heavier
    process.stderr.write(`kaihub: running without a bundle (${error?.message ?? error})\n`);
  }
}
if (!bundled) {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}
