// Preload for every process the benchmark spawns: exit when the orchestrator
// (BENCH_PARENT_PID) is gone, so a killed benchmark never leaves a gateway or
// upstream listening. Its processes are detached (own process group) for
// clean group shutdown, which is also why they would otherwise survive it.
const parent = Number(process.env.BENCH_PARENT_PID);
if (parent > 0) {
  setInterval(() => {
    try {
      process.kill(parent, 0);
    } catch {
      process.exit(0);
    }
  }, 1_000).unref();
}
