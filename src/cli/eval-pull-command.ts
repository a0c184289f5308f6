/**
 * `kaihub eval pull <benchmark> [--dir D] [--accept-licence] [--require-pinned] [--registry FILE]` and
 * `kaihub eval pull --list`: a benchmark's official data onto this machine (src/evaluation/pull/). Like
 * `kaihub models pull`, an operator's step on the machine that runs evaluations; the hub never
 * downloads anything itself.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DownloadError } from '../evaluation/pull/download.ts';
import { PullRefused, pullBenchmark } from '../evaluation/pull/pull.ts';
import { loadRegistry, RegistryError } from '../evaluation/pull/registry.ts';
import { hfOptions } from './models/huggingface.ts';
import { createProgress } from './models/progress.ts';
import { renderTable } from './table.ts';

type Out = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

export const EVAL_PULL_USAGE = `kaihub eval pull <benchmark> [--dir D] [--accept-licence] [--require-pinned] [--registry FILE] [--json]
kaihub eval pull --list [--registry FILE]

  공식 벤치마크 데이터를 <dir>/<benchmark>/에 내려받고 SHA-256을 확인합니다(중단되면 이어받기).
  Downloads a benchmark's official data into <dir>/<benchmark>/, checks each file's SHA-256, resumes
  an interrupted download. A licence that restricts use is refused until --accept-licence.
  --dir             기본 / default: $KAIHUB_BENCHMARKS_DIR, else ./data/benchmarks
  --registry        벤치마크 추가·해시 고정 / more benchmarks or pinned hashes ($KAIHUB_BENCHMARK_REGISTRY)
  --require-pinned  레지스트리에 고정된 해시만 / only files whose SHA-256 the registry pins
  KAIHUB_HF_ENDPOINT  Hugging Face 주소(미러) / endpoint or mirror for {hf} URLs
`;

export async function runEvalPull(
  args: string[],
  env: NodeJS.ProcessEnv,
  out: Out,
  err: Out,
): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        dir: { type: 'string' },
        registry: { type: 'string' },
        'accept-licence': { type: 'boolean' },
        'accept-license': { type: 'boolean' },
        'require-pinned': { type: 'boolean' },
        list: { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    err.write(`kaihub eval pull: ${(error as Error).message}\n${EVAL_PULL_USAGE}`);
    return 1;
  }
  if (values.help) {
    out.write(EVAL_PULL_USAGE);
    return 0;
  }
  try {
    const registry = loadRegistry(
      (values.registry as string | undefined) ?? (env.KAIHUB_BENCHMARK_REGISTRY || undefined),
    );
    if (values.list) {
      const rows = registry.map((b) => ({
        id: b.id,
        name: b.name,
        licence: b.licence.name,
        accept: b.acceptanceRequired ? '필요 required' : '—',
        files: b.files.length,
        pinned: `${b.files.filter((f) => f.sha256 !== null).length}/${b.files.length}`,
      }));
      out.write(
        renderTable(
          [
            { header: 'ID', value: (r) => r.id },
            { header: '이름 Name', value: (r) => r.name },
            { header: '라이선스 Licence', value: (r) => r.licence },
            { header: '동의 Accept', value: (r) => r.accept },
            { header: '파일 Files', value: (r) => r.files, align: 'right' },
            { header: '해시 고정 Pinned', value: (r) => r.pinned, align: 'right' },
          ],
          rows,
        ),
      );
      return 0;
    }
    if (positionals.length !== 1) {
      err.write(`kaihub eval pull: 벤치마크 하나를 지정하세요 / name one benchmark\n${EVAL_PULL_USAGE}`);
      return 1;
    }
    const id = positionals[0]!;
    const benchmark = registry.find((b) => b.id === id);
    if (!benchmark) {
      err.write(
        `kaihub eval pull: 알 수 없는 벤치마크 / unknown benchmark "${id}" (known: ${registry.map((b) => b.id).join(', ')})\n`,
      );
      return 1;
    }
    const dir = resolve(
      (values.dir as string | undefined) ?? (env.KAIHUB_BENCHMARKS_DIR || './data/benchmarks'),
    );
    const manifest = await pullBenchmark(benchmark, {
      dir,
      acceptLicence: Boolean(values['accept-licence'] || values['accept-license']),
      requirePinned: Boolean(values['require-pinned']),
      hfEndpoint: hfOptions(env).endpoint,
      progress: (file) => createProgress(file, err),
      log: (line) => err.write(`${line}\n`),
    });
    if (values.json) {
      out.write(`${JSON.stringify(manifest, null, 2)}\n`);
    } else {
      const fresh = manifest.files.filter((f) => !f.alreadyPresent).length;
      out.write(
        `${benchmark.name}: ${manifest.files.length}개 파일 확인 / files checked (${fresh} 새로 받음 / downloaded), ${dir}/${benchmark.id}\n` +
          `라이선스 / licence: ${benchmark.licence.name} (${benchmark.licence.url})\n`,
      );
    }
    return 0;
  } catch (error) {
    if (error instanceof PullRefused || error instanceof DownloadError || error instanceof RegistryError) {
      err.write(`kaihub eval pull: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}
