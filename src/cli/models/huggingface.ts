/**
 * Fetching a GGUF file from a Hugging Face repository into the models folder.
 *
 * Why this lives in `src/cli/models/` and not in `src/providers/local/`: the hub never downloads
 * anything. Pulling is an operator's step run by `kaihub models pull` on the machine whose models
 * folder the hub reads (the same `KAIHUB_MODELS_DIR`); the hub only loads files already there. Keeping
 * it here means the serving process has no code path that reaches Hugging Face, and the provider
 * folder stays a pure protocol adapter.
 *
 * Endpoint: `KAIHUB_HF_ENDPOINT` (default https://huggingface.co, a mirror works the same);
 * `HF_TOKEN`, when set, goes as a bearer token (gated or private repositories).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Progress } from './progress.ts';

export const DEFAULT_HF_ENDPOINT = 'https://huggingface.co';

/** A failure the CLI prints as one line (exit 1); an interrupted download leaves its `.part` file to resume. */
export class PullError extends Error {
  override name = 'PullError';
}

export interface HfOptions {
  endpoint: string;
  token?: string | undefined;
}

export interface RepoFile {
  /** Path inside the repository (may contain folders). */
  path: string;
  size?: number | undefined;
  sha256?: string | undefined;
}

export function hfOptions(env: NodeJS.ProcessEnv): HfOptions {
  const endpoint = (env.KAIHUB_HF_ENDPOINT ?? '').trim() || DEFAULT_HF_ENDPOINT;
  const token = (env.HF_TOKEN ?? '').trim() || undefined;
  return { endpoint: endpoint.replace(/\/+$/, ''), token };
}

function headers(options: HfOptions, extra: Record<string, string> = {}): Record<string, string> {
  return {
    'user-agent': 'kaihub',
    ...(options.token && { authorization: `Bearer ${options.token}` }),
    ...extra,
  };
}

/** `owner/name`, each part as Hugging Face allows; anything else is refused before a request. */
export function checkRepo(repo: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/.test(repo)) {
    throw new PullError(
      `저장소 이름이 올바르지 않습니다 / invalid repository "${repo}": expected owner/name`,
    );
  }
  return repo;
}

const encodePath = (path: string) => path.split('/').map(encodeURIComponent).join('/');

async function request(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, { redirect: 'follow', ...init });
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw new PullError(
      `연결할 수 없습니다 / cannot reach ${new URL(url).origin}: ${cause?.code ?? cause?.message ?? (error as Error).message}`,
    );
  }
}

/** A branch, tag or commit: what `resolve/{revision}` accepts. */
export function checkRevision(revision: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$/.test(revision) || revision.includes('..')) {
    throw new PullError(
      `리비전이 올바르지 않습니다 / invalid revision "${revision}" (a commit, branch or tag)`,
    );
  }
  return revision;
}

/**
 * The repository's files at `revision` with size and LFS SHA-256 (`GET /api/models/{repo}?blobs=true`,
 * or `/api/models/{repo}/revision/{revision}` for anything but `main`).
 */
export async function listRepoFiles(
  options: HfOptions,
  repo: string,
  revision = 'main',
): Promise<RepoFile[]> {
  const at = revision === 'main' ? '' : `/revision/${encodeURIComponent(checkRevision(revision))}`;
  const url = `${options.endpoint}/api/models/${checkRepo(repo)}${at}?blobs=true`;
  const res = await request(url, { headers: headers(options), signal: AbortSignal.timeout(30_000) });
  if (!res.ok) {
    const hint =
      res.status === 401 || res.status === 403
        ? ' (비공개·동의 필요 저장소는 HF_TOKEN / gated or private: set HF_TOKEN)'
        : res.status === 404
          ? revision === 'main'
            ? ' (저장소가 없습니다 / no such repository)'
            : ` (저장소나 리비전 ${revision}이 없습니다 / no such repository or revision)`
          : '';
    throw new PullError(`${repo}: HTTP ${res.status}${hint}`);
  }
  const body = (await res.json()) as {
    siblings?: { rfilename?: string; size?: number; lfs?: { sha256?: string; size?: number } }[];
  };
  return (body.siblings ?? [])
    .filter((s) => typeof s.rfilename === 'string')
    .map((s) => ({ path: s.rfilename!, size: s.lfs?.size ?? s.size, sha256: s.lfs?.sha256 }));
}

/** The one `.gguf` of a repository, or its `Q4_K_M` one when there are several; otherwise an error listing them. */
export function pickGguf(repo: string, files: readonly RepoFile[]): RepoFile {
  const ggufs = files.filter((f) => f.path.toLowerCase().endsWith('.gguf'));
  if (ggufs.length === 1) return ggufs[0]!;
  if (ggufs.length === 0) {
    throw new PullError(
      `${repo}: GGUF 파일이 없습니다 / no .gguf file in this repository (GGUF 저장소인가요? / is it a GGUF repository?)`,
    );
  }
  const q4 = ggufs.filter((f) => /q4_k_m/i.test(basename(f.path)));
  if (q4.length === 1) return q4[0]!;
  throw new PullError(
    `${repo}: GGUF 파일이 여럿입니다. 하나를 고르세요 / several GGUF files, name one:\n${ggufs.map((f) => `  ${f.path}`).join('\n')}`,
  );
}

/** The local name of a repository file: its base name, which is what a `local` deployment's `upstreamModel` holds. */
export function localName(path: string): string {
  const name = basename(path);
  if (!name || name.startsWith('.') || name !== path.split('/').pop()) {
    throw new PullError(`파일 이름이 올바르지 않습니다 / invalid file name "${path}"`);
  }
  return name;
}

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

export interface DownloadResult {
  path: string;
  bytes: number;
  /** The part file already held this many bytes and the server honoured the range. */
  resumedFrom: number;
  /** The file was already in place (and matched the checksum when there was one). */
  alreadyPresent: boolean;
}

/**
 * `{endpoint}/{repo}/resolve/{revision}/{file}` → `<dir>/<name>.part` → checked → `<dir>/<name>`.
 * A part file left by an interrupted run is continued with `Range: bytes=<size>-` (206); a 200 means
 * the server ignored the range and the download starts over. Redirects (the CDN) are followed.
 */
export async function download(
  options: HfOptions,
  repo: string,
  file: RepoFile,
  dir: string,
  progress: Progress,
  revision = 'main',
): Promise<DownloadResult> {
  const name = localName(file.path);
  const target = join(dir, name);
  const part = `${target}.part`;
  const expected = file.sha256?.toLowerCase();

  if ((await sizeOf(target)) > 0) {
    if (expected && (await sha256OfFile(target)) !== expected) {
      throw new PullError(
        `${name}: 이미 있는 파일의 SHA-256이 다릅니다 / a different file of this name is already in ${dir} (kaihub models rm ${name})`,
      );
    }
    return { path: target, bytes: await sizeOf(target), resumedFrom: 0, alreadyPresent: true };
  }

  let offset = await sizeOf(part);
  if (file.size !== undefined && offset > file.size) {
    await rm(part, { force: true });
    offset = 0;
  }
  const url = `${options.endpoint}/${checkRepo(repo)}/resolve/${encodeURIComponent(checkRevision(revision))}/${encodePath(file.path)}`;
  const hash = createHash('sha256');
  let resumedFrom = 0;
  let received = offset;
  let streamed = false;
  let total = file.size;

  const complete = file.size !== undefined && offset === file.size && offset > 0;
  if (!complete) {
    const res = await request(url, {
      headers: headers(options, offset > 0 ? { range: `bytes=${offset}-` } : {}),
    });
    if (res.status === 416 && offset > 0) {
      // The part already holds every byte: the checksum below decides.
      await res.body?.cancel();
    } else {
      if (res.status !== 200 && res.status !== 206) {
        await res.body?.cancel();
        throw new PullError(`${repo}/${file.path}: HTTP ${res.status}`);
      }
      const length = Number(res.headers.get('content-length') ?? Number.NaN);
      if (res.status === 206) {
        const start = Number(/^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1] ?? Number.NaN);
        if (start !== offset) {
          await res.body?.cancel();
          throw new PullError(
            `${repo}/${file.path}: 서버가 다른 구간을 보냈습니다 / unexpected Content-Range`,
          );
        }
        resumedFrom = offset;
        const whole = Number(/\/(\d+)$/.exec(res.headers.get('content-range') ?? '')?.[1] ?? Number.NaN);
        total ??= Number.isFinite(whole) ? whole : undefined;
      } else {
        // 200: a fresh download, or the server ignored the range: start over.
        offset = 0;
        received = 0;
        total ??= Number.isFinite(length) ? length : undefined;
      }
      if (resumedFrom > 0) {
        for await (const chunk of createReadStream(part, { end: resumedFrom - 1 }))
          hash.update(chunk as Buffer);
      }
      const handle = await open(part, resumedFrom > 0 ? 'a' : 'w');
      progress.start(total, resumedFrom);
      try {
        if (!res.body) throw new PullError(`${repo}/${file.path}: 빈 응답 / empty response`);
        for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
          await handle.write(chunk);
          hash.update(chunk);
          received += chunk.length;
          progress.update(received);
        }
      } catch (error) {
        progress.stop();
        if (error instanceof PullError) throw error;
        throw new PullError(
          `${name}: 내려받기가 중단되었습니다 (${received} bytes, ${part}); 다시 실행하면 이어받습니다 / download interrupted; run the same command again to resume (${(error as Error).message})`,
        );
      } finally {
        await handle.close();
      }
      progress.stop();
      streamed = true;
    }
  }

  const actual = streamed ? hash.digest('hex') : await sha256OfFile(part);
  if (file.size !== undefined && (await sizeOf(part)) !== file.size) {
    throw new PullError(
      `${name}: 크기가 다릅니다 / size mismatch (expected ${file.size}, got ${await sizeOf(part)}); 다시 실행하면 이어받습니다 / run again to resume`,
    );
  }
  if (expected && actual !== expected) {
    await rm(part, { force: true });
    throw new PullError(
      `${name}: SHA-256이 맞지 않아 지웠습니다 / checksum mismatch, the download was deleted (expected ${expected}, got ${actual})`,
    );
  }
  await rename(part, target);
  return { path: target, bytes: await sizeOf(target), resumedFrom, alreadyPresent: false };
}
