/**
 * Download progress on stderr: a bar redrawn in place on a terminal, plain lines (every 10%, or every
 * 5 s when the size is unknown) when stderr is a file or a pipe, so logs stay readable.
 */
export interface Progress {
  start(total: number | undefined, already: number): void;
  update(received: number): void;
  stop(): void;
}

const MB = 1024 * 1024;
const mb = (bytes: number) => (bytes / MB).toFixed(1);

export function createProgress(
  label: string,
  stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number },
  now: () => number = Date.now,
): Progress {
  const tty = stream.isTTY === true;
  let total: number | undefined;
  let startedAt = 0;
  let startBytes = 0;
  let received = 0;
  let lastDraw = 0;
  let lastStep = -1;
  let active = false;
  /** Bytes at the last plain line, so stopping does not repeat it. */
  let written = -1;

  const line = () => {
    const seconds = Math.max((now() - startedAt) / 1000, 0.001);
    const speed = `${mb((received - startBytes) / seconds)} MB/s`;
    if (total === undefined || total === 0) return `${label}  ${mb(received)} MB  ${speed}`;
    const ratio = Math.min(received / total, 1);
    const percent = `${(ratio * 100).toFixed(0).padStart(3)}%`;
    const sizes = `${mb(received)}/${mb(total)} MB`;
    if (!tty) return `${label}  ${percent}  ${sizes}  ${speed}`;
    const width = Math.max(10, Math.min(30, (stream.columns ?? 80) - label.length - 40));
    const filled = Math.round(ratio * width);
    return `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${percent}  ${sizes}  ${speed}`;
  };

  return {
    start(size, already) {
      total = size;
      startedAt = now();
      startBytes = already;
      received = already;
      lastDraw = 0;
      lastStep = -1;
      written = -1;
      active = true;
      if (already > 0)
        stream.write(`${label}: ${mb(already)} MB부터 이어받습니다 / resuming at ${mb(already)} MB\n`);
    },
    update(bytes) {
      received = bytes;
      const t = now();
      if (tty) {
        if (t - lastDraw < 100) return;
        lastDraw = t;
        stream.write(`\r${line()}\x1b[K`);
        return;
      }
      const step = total ? Math.floor((received / total) * 10) : Math.floor((t - startedAt) / 5000);
      if (step !== lastStep) {
        lastStep = step;
        written = received;
        stream.write(`${line()}\n`);
      }
    },
    stop() {
      if (!active) return;
      active = false;
      if (tty) stream.write(`\r${line()}\x1b[K\n`);
      else if (written !== received) stream.write(`${line()}\n`);
    },
  };
}
