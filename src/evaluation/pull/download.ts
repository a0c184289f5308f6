import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * One file over HTTP into place, resumable and checked: bytes go to `<target>.part`; an interrupted
 * download leaves the part, and the next attempt asks only for the rest (`Range: bytes=<size>-`,
 * answered 206; a 200 means the server ignored the range and it starts over); the whole file's
 * SHA-256 is compared before the part becomes the file, and a mismatch deletes the part, since
 * resuming from wrong bytes can never come right.
 */

/** A failure the CLI prints as one line (exit 1). */
export class DownloadError extends Error {
  override name = 'DownloadError';
}

export interface DownloadProgress {
  start(total: number | undefined, already: number): void;
  update(received: number): void;
  stop(): void;
}

export const silentProgress: DownloadProgress = { start() {}, update() {}, stop() {} };

export interface DownloadResult {
  bytes: number;
  sha256: string;
  resumedFrom: number;
  alreadyPresent: boolean;
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function request(url: string, headers: Record<string, string>): Promise<Response> {
  try {
    return await fetch(url, { redirect: 'follow', headers: { 'user-agent': 'kaihub', ...headers } });
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw new DownloadError(
      `연결할 수 없습니다 / cannot reach ${new URL(url).origin}: ${cause?.code ?? cause?.message ?? (error as Error).message}`,
    );
  }
}

/**
 * `expected`: the SHA-256 the file must have (null: whatever arrives, its hash returned); `bytes`: its
 * size where known.
 */
export async function downloadFile(
  url: string,
  target: string,
  expected: { sha256: string | null; bytes: number | null },
  progress: DownloadProgress = silentProgress,
): Promise<DownloadResult> {
  const name = target;
  const part = `${target}.part`;
  if ((await sizeOf(target)) > 0) {
    const actual = await sha256OfFile(target);
    if (expected.sha256 !== null && actual !== expected.sha256)
      throw new DownloadError(
        `${name}: 이미 있는 파일의 SHA-256이 다릅니다 / the file in place has another SHA-256 (expected ${expected.sha256}, got ${actual}); 지우고 다시 받으세요 / delete it and pull again`,
      );
    return { bytes: await sizeOf(target), sha256: actual, resumedFrom: 0, alreadyPresent: true };
  }
  await mkdir(dirname(target), { recursive: true });

  let offset = await sizeOf(part);
  if (expected.bytes !== null && offset > expected.bytes) {
    await rm(part, { force: true });
    offset = 0;
  }
  const hash = createHash('sha256');
  let resumedFrom = 0;
  let received = offset;
  let total = expected.bytes ?? undefined;
  let streamed = false;
  const whole = expected.bytes !== null && offset === expected.bytes && offset > 0;
  if (!whole) {
    const res = await request(url, offset > 0 ? { range: `bytes=${offset}-` } : {});
    if (res.status === 416 && offset > 0) {
      // the part already holds every byte: the checksum below decides
      await res.body?.cancel();
    } else {
      if (res.status !== 200 && res.status !== 206) {
        await res.body?.cancel();
        throw new DownloadError(`${url}: HTTP ${res.status}`);
      }
      if (res.status === 206) {
        const range = res.headers.get('content-range') ?? '';
        const start = Number(/^bytes (\d+)-/.exec(range)?.[1] ?? Number.NaN);
        if (start !== offset) {
          await res.body?.cancel();
          throw new DownloadError(
            `${url}: 서버가 다른 구간을 보냈습니다 / unexpected Content-Range "${range}"`,
          );
        }
        resumedFrom = offset;
        const size = Number(/\/(\d+)$/.exec(range)?.[1] ?? Number.NaN);
        total ??= Number.isFinite(size) ? size : undefined;
        for await (const chunk of createReadStream(part, { end: resumedFrom - 1 }))
          hash.update(chunk as Buffer);
      } else {
        offset = 0;
        received = 0;
        const length = Number(res.headers.get('content-length') ?? Number.NaN);
        total ??= Number.isFinite(length) ? length : undefined;
      }
      const handle = await open(part, resumedFrom > 0 ? 'a' : 'w');
      progress.start(total, resumedFrom);
      try {
        if (!res.body) throw new DownloadError(`${url}: 빈 응답 / empty response`);
        for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
          await handle.write(chunk);
          hash.update(chunk);
          received += chunk.length;
          progress.update(received);
        }
      } catch (error) {
        progress.stop();
        if (error instanceof DownloadError) throw error;
        throw new DownloadError(
          `${name}: 내려받기가 중단되었습니다 (${received} bytes, ${part}); 같은 명령을 다시 실행하면 이어받습니다 / download interrupted; run the same command again to resume (${(error as Error).message})`,
        );
      } finally {
        await handle.close();
      }
      progress.stop();
      streamed = true;
    }
  }
  const size = await sizeOf(part);
  if (expected.bytes !== null && size !== expected.bytes)
    throw new DownloadError(
      `${name}: 크기가 다릅니다 / size mismatch (expected ${expected.bytes}, got ${size}); 다시 실행하면 이어받습니다 / run again to resume`,
    );
  const actual = streamed ? hash.digest('hex') : await sha256OfFile(part);
  if (expected.sha256 !== null && actual !== expected.sha256) {
    await rm(part, { force: true });
    throw new DownloadError(
      `${name}: SHA-256이 맞지 않아 지웠습니다 / checksum mismatch, the download was deleted (expected ${expected.sha256}, got ${actual})`,
    );
  }
  await rename(part, target);
  return { bytes: size, sha256: actual, resumedFrom, alreadyPresent: false };
}
