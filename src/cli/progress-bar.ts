/**
 * A progress bar with an ETA on stderr (stdout stays clean for `--json`). On a terminal it redraws one
 * line; otherwise (a log, a test) it writes a line every few seconds and at the end.
 */

export interface ProgressState {
  total: number;
  done: number;
  failed: number;
  /** Items answered by this process since it started: the rate the ETA is computed from. */
  answeredHere: number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/** `[#####-----] 120/1000 12% · 45.3 items/s · ETA 0:19` (failed items are named when there are). */
export function progressLine(state: ProgressState, elapsedMs: number, width = 24): string {
  const finished = state.done + state.failed;
  const fraction = state.total === 0 ? 1 : Math.min(1, finished / state.total);
  const filled = Math.round(fraction * width);
  const rate = elapsedMs > 0 ? (state.answeredHere * 1000) / elapsedMs : 0;
  const eta = rate > 0 ? (state.total - finished) / rate : Number.NaN;
  const failed = state.failed > 0 ? ` · 실패 failed ${state.failed}` : '';
  return (
    `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${finished}/${state.total} ` +
    `${Math.floor(fraction * 100)}% · ${rate.toFixed(1)} items/s · ETA ${formatDuration(eta)}${failed}`
  );
}

export class ProgressBar {
  private readonly startedAt = performance.now();
  private lastLine = Number.NEGATIVE_INFINITY;
  private last: ProgressState | null = null;

  constructor(
    private readonly out: NodeJS.WritableStream & { isTTY?: boolean },
    private readonly label: string,
    private readonly intervalMs = 2_000,
  ) {}

  update(state: ProgressState): void {
    this.last = state;
    const now = performance.now();
    if (this.out.isTTY) {
      if (now - this.lastLine < 100) return;
      this.lastLine = now;
      this.out.write(`\r${this.label} ${progressLine(state, now - this.startedAt)}\u001b[K`);
    } else if (now - this.lastLine >= this.intervalMs) {
      this.lastLine = now;
      this.out.write(`${this.label} ${progressLine(state, now - this.startedAt)}\n`);
    }
  }

  end(): void {
    if (this.last === null) return;
    const line = `${this.label} ${progressLine(this.last, performance.now() - this.startedAt)}`;
    this.out.write(this.out.isTTY ? `\r${line}\u001b[K\n` : `${line}\n`);
  }
}
