import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DownloadError, type DownloadProgress, downloadFile } from './download.ts';
import type { Benchmark } from './registry.ts';

/**
 * `kaihub eval pull <benchmark>`: a benchmark's official files into `<dir>/<id>/`, each checked, with
 * a manifest of what was pulled from where, under which licence, accepted by whom and when.
 */

export class PullRefused extends Error {
  override name = 'PullRefused';
}

export interface PullOptions {
  dir: string;
  acceptLicence: boolean;
  /** Refuse files whose SHA-256 the registry does not pin (no trust on first use). */
  requirePinned: boolean;
  /** Replaces `{hf}` in URLs: KAIHUB_HF_ENDPOINT, or https://huggingface.co. */
  hfEndpoint: string;
  progress(file: string): DownloadProgress;
  log(line: string): void;
}

export interface PulledFile {
  path: string;
  url: string;
  bytes: number;
  sha256: string;
  /** pinned: the registry's hash; recorded: the one noted at the first pull; first: noted now. */
  checkedAgainst: 'pinned' | 'recorded' | 'first';
  resumedFrom: number;
  alreadyPresent: boolean;
}

export interface PullManifest {
  benchmark: string;
  name: string;
  homepage: string;
  licence: { name: string; url: string; acceptanceRequired: boolean; acceptedAt: string | null };
  pulledAt: string;
  files: PulledFile[];
}

export const SUMS_FILE = 'SHA256SUMS';
export const MANIFEST_FILE = 'kaihub-pull.json';

/** `SHA256SUMS` as `sha256sum` writes it: `<hex>  <path>` a line. */
function readSums(path: string): Map<string, string> {
  const sums = new Map<string, string>();
  if (!existsSync(path)) return sums;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line.trim());
    if (m) sums.set(m[2]!, m[1]!);
  }
  return sums;
}

export async function pullBenchmark(benchmark: Benchmark, o: PullOptions): Promise<PullManifest> {
  if (benchmark.acceptanceRequired && !o.acceptLicence)
    throw new PullRefused(
      `${benchmark.id}: 이용 조건(${benchmark.licence.name}, ${benchmark.licence.url})에 동의해야 내려받을 수 있습니다. 읽고 동의하면 --accept-licence를 붙여 다시 실행하세요. / ` +
        `${benchmark.name} comes under ${benchmark.licence.name} (${benchmark.licence.url}), which restricts its use: read it, and run again with --accept-licence to accept it.`,
    );
  const unpinned = benchmark.files.filter((f) => f.sha256 === null);
  if (o.requirePinned && unpinned.length > 0)
    throw new PullRefused(
      `${benchmark.id}: ${unpinned.length}개 파일의 SHA-256이 레지스트리에 고정되어 있지 않습니다 / the registry pins no SHA-256 for ${unpinned.length} file(s) (e.g. ${unpinned[0]!.path}): pin them in a registry file (--registry), or pull without --require-pinned`,
    );
  const root = join(o.dir, benchmark.id);
  const sumsPath = join(root, SUMS_FILE);
  const recorded = readSums(sumsPath);
  const files: PulledFile[] = [];
  for (const file of benchmark.files) {
    const url = file.url.replaceAll('{hf}', o.hfEndpoint.replace(/\/+$/, ''));
    const pinned = file.sha256;
    const noted = recorded.get(file.path) ?? null;
    const expected = pinned ?? noted;
    let result: Awaited<ReturnType<typeof downloadFile>>;
    try {
      result = await downloadFile(
        url,
        join(root, file.path),
        { sha256: expected, bytes: file.bytes },
        o.progress(file.path),
      );
    } catch (error) {
      if (error instanceof DownloadError && pinned === null && noted !== null)
        throw new DownloadError(
          `${error.message}\n  (${file.path}의 SHA-256은 처음 받을 때 ${SUMS_FILE}에 기록된 값입니다 / the expected SHA-256 is the one recorded in ${sumsPath} at the first pull: the publisher changed the file, or it was corrupted)`,
        );
      throw error;
    }
    const checkedAgainst = pinned !== null ? 'pinned' : noted !== null ? 'recorded' : 'first';
    if (checkedAgainst === 'first') {
      recorded.set(file.path, result.sha256);
      o.log(
        `${file.path}: SHA-256이 레지스트리에 없어 기록했습니다 / not pinned in the registry: recorded ${result.sha256} in ${SUMS_FILE}; 게시자가 밝힌 값과 비교하세요 / compare it with the publisher's`,
      );
    }
    files.push({ path: file.path, url, ...result, checkedAgainst });
    // written after each file, so an interrupted pull keeps what it checked
    await writeFile(sumsPath, [...recorded].map(([path, sum]) => `${sum}  ${path}\n`).join(''));
  }
  const manifestPath = join(root, MANIFEST_FILE);
  const previous = existsSync(manifestPath)
    ? (JSON.parse(readFileSync(manifestPath, 'utf8')) as PullManifest)
    : undefined;
  const now = new Date().toISOString();
  const manifest: PullManifest = {
    benchmark: benchmark.id,
    name: benchmark.name,
    homepage: benchmark.homepage,
    licence: {
      ...benchmark.licence,
      acceptanceRequired: benchmark.acceptanceRequired,
      acceptedAt: benchmark.acceptanceRequired ? (previous?.licence.acceptedAt ?? now) : null,
    },
    pulledAt: now,
    files,
  };
  await writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}
