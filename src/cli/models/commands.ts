/**
 * `kaihub models pull | list | rm`: GGUF files in the models folder (`KAIHUB_MODELS_DIR`) of this
 * machine, and their `local` deployments in a running hub (through /admin/v1, like every other
 * admin command). Downloading is in huggingface.ts; the hub itself never downloads.
 */
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  AdminClient,
  ApiError,
  type Connection,
  ConnectionError,
  DEFAULT_URL,
  resolveConnection,
} from '../http-client.ts';
import { renderTable } from '../table.ts';
import { readGgufContextLength } from './gguf-metadata.ts';
import { download, hfOptions, listRepoFiles, localName, PullError, pickGguf } from './huggingface.ts';
import { createProgress } from './progress.ts';

/** The supplier every pulled model is listed under, created on the first pull. */
export const LOCAL_SUPPLIER = { name: '로컬 모델', nameEn: 'Local models' } as const;
/** When the GGUF file does not say. */
const DEFAULT_CONTEXT_WINDOW = 4096;

class UsageError extends Error {
  override name = 'UsageError';
}

type Row = Record<string, unknown>;
type Out = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

/** `kanana-1.5-2.1b-instruct-Q4_K_M.gguf` → `kanana-1.5-2.1b-instruct-q4_k_m`: a valid public model id. */
export function modelSlug(file: string): string {
  const slug = file
    .replace(/\.gguf$/i, '')
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 128)
    .replace(/[-.]+$/, '');
  return slug || 'local-model';
}

function modelsDir(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return resolve(flag?.trim() || env.KAIHUB_MODELS_DIR?.trim() || './data/models');
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

function parse(args: string[]) {
  try {
    return parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        url: { type: 'string' },
        token: { type: 'string' },
        json: { type: 'boolean' },
        model: { type: 'string' },
        'no-register': { type: 'boolean' },
        'models-dir': { type: 'string' },
        revision: { type: 'string' },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

async function data(client: AdminClient, path: string): Promise<Row[]> {
  return ((await client.request('GET', path)) as { data: Row[] }).data;
}

export interface Registration {
  supplierId: string;
  productId: string;
  model: string;
  deploymentId: string;
  created: { product: boolean; deployment: boolean };
}

/**
 * The supplier (found by name or created), a product `model` (found or created: chat, text, free,
 * domestic) and an active `local` deployment of `file` (found, re-enabled, or created).
 */
export async function registerLocalModel(
  client: AdminClient,
  options: { model: string; file: string; contextWindow: number; description: string },
): Promise<Registration> {
  const suppliers = await data(client, '/suppliers');
  const supplier =
    suppliers.find((s) => s.name === LOCAL_SUPPLIER.name) ??
    ((await client.request('POST', '/suppliers', { ...LOCAL_SUPPLIER })) as Row);
  const products = await data(client, '/products');
  let product = products.find((p) => p.model === options.model);
  const createdProduct = !product;
  product ??= (await client.request('POST', '/products', {
    supplierId: supplier.id,
    model: options.model,
    displayName: options.file.replace(/\.gguf$/i, ''),
    description: options.description,
    purposes: ['chat'],
    modality: 'text',
    contextWindow: options.contextWindow,
    priceInputPer1M: '0',
    priceOutputPer1M: '0',
    residency: 'domestic',
  })) as Row;
  const deployments = await data(client, `/deployments?productId=${encodeURIComponent(String(product.id))}`);
  let deployment = deployments.find((d) => d.adapter === 'local' && d.upstreamModel === options.file);
  const createdDeployment = !deployment;
  if (!deployment) {
    deployment = (await client.request('POST', '/deployments', {
      productId: product.id,
      adapter: 'local',
      baseUrl: 'local:',
      upstreamModel: options.file,
    })) as Row;
  } else if (deployment.status !== 'active') {
    deployment = (await client.request('PATCH', `/deployments/${encodeURIComponent(String(deployment.id))}`, {
      status: 'active',
    })) as Row;
  }
  return {
    supplierId: String(supplier.id),
    productId: String(product.id),
    model: String(product.model),
    deploymentId: String(deployment.id),
    created: { product: createdProduct, deployment: createdDeployment },
  };
}

type Parsed = ReturnType<typeof parse>;

function connection(parsed: Parsed, env: NodeJS.ProcessEnv): Connection {
  return resolveConnection({ url: parsed.values.url, token: parsed.values.token }, env);
}

async function pull(parsed: Parsed, env: NodeJS.ProcessEnv, out: Out, err: Out): Promise<number> {
  const [repo, wanted, ...extra] = parsed.positionals;
  if (!repo || extra.length > 0) throw new UsageError('kaihub models pull <huggingface-repo> [file]');
  const register = !parsed.values['no-register'];
  // Fail before a long download, not after it, when the hub cannot be told.
  let client: AdminClient | undefined;
  try {
    if (register) client = new AdminClient(connection(parsed, env));
  } catch (error) {
    if (!(error instanceof ConnectionError)) throw error;
    throw new ConnectionError(
      `${error.message}\n  등록 없이 받기만 하려면 / to download without registering: --no-register`,
    );
  }
  const dir = modelsDir(parsed.values['models-dir'], env);
  const hf = hfOptions(env);

  const revision = parsed.values.revision?.trim() || 'main';
  const files = await listRepoFiles(hf, repo, revision);
  const file = wanted ? files.find((f) => f.path === wanted) : pickGguf(repo, files);
  if (!file) {
    const ggufs = files.filter((f) => f.path.toLowerCase().endsWith('.gguf')).map((f) => `  ${f.path}`);
    throw new PullError(
      `${repo}: "${wanted}" 파일이 없습니다 / no such file in the repository` +
        (ggufs.length > 0 ? `; GGUF 파일 / GGUF files:\n${ggufs.join('\n')}` : ''),
    );
  }
  if (!file.sha256)
    err.write(
      `${file.path}: SHA-256이 알려지지 않아 검사하지 않습니다 / no SHA-256 published: not checked\n`,
    );
  const name = localName(file.path);
  await mkdir(dir, { recursive: true });
  err.write(`${repo}/${file.path} → ${join(dir, name)}\n`);
  const result = await download(hf, repo, file, dir, createProgress(name, err), revision);
  err.write(
    result.alreadyPresent
      ? `이미 있습니다 / already present: ${result.path} (${mb(result.bytes)})\n`
      : `저장했습니다 / saved ${result.path} (${mb(result.bytes)}${file.sha256 ? ', SHA-256 OK' : ''})\n`,
  );

  const summary: Row = { file: name, path: result.path, bytes: result.bytes, sha256: file.sha256 ?? null };
  if (client) {
    const contextWindow = (await readGgufContextLength(result.path)) ?? DEFAULT_CONTEXT_WINDOW;
    const model = parsed.values.model?.trim() || modelSlug(name);
    try {
      const registration = await registerLocalModel(client, {
        model,
        file: name,
        contextWindow,
        description: `Hugging Face ${repo}${revision === 'main' ? '' : `@${revision}`} (${file.path})`,
      });
      Object.assign(summary, registration, { contextWindow });
    } catch (error) {
      if (error instanceof ApiError || error instanceof ConnectionError) {
        err.write(
          `kaihub: 파일은 받았지만 허브에 등록하지 못했습니다 / downloaded, but not registered: ${error.message}\n` +
            `  허브를 켠 뒤 같은 명령을 다시 실행하세요 (다시 받지 않습니다) / start the hub and run the same command again (nothing is downloaded twice)\n`,
        );
        return 1;
      }
      throw error;
    }
  }
  if (parsed.values.json) out.write(`${JSON.stringify(summary, null, 2)}\n`);
  else if (summary.model) {
    out.write(
      `${summary.model}  (${summary.created && (summary.created as Row).product ? '새 상품 / new product' : '기존 상품 / existing product'} ${summary.productId}, ` +
        `배포 / deployment ${summary.deploymentId})\n`,
    );
  } else out.write(`${result.path}\n`);
  return 0;
}

interface LocalFile {
  file: string;
  bytes: number;
  partial: boolean;
}

async function localFiles(dir: string): Promise<LocalFile[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') return [];
    throw error;
  }
  const files: LocalFile[] = [];
  for (const name of names.sort()) {
    const lower = name.toLowerCase();
    const partial = lower.endsWith('.gguf.part');
    if (!lower.endsWith('.gguf') && !partial) continue;
    const info = await stat(join(dir, name));
    if (info.isFile()) files.push({ file: name, bytes: info.size, partial });
  }
  return files;
}

/** The hub's local deployments by file name, or a reason it could not be asked. */
async function localDeployments(
  parsed: Parsed,
  env: NodeJS.ProcessEnv,
): Promise<{ client?: AdminClient; byFile: Map<string, Row[]>; reason?: string }> {
  const byFile = new Map<string, Row[]>();
  let client: AdminClient;
  try {
    client = new AdminClient(connection(parsed, env));
  } catch (error) {
    return { byFile, reason: (error as Error).message };
  }
  try {
    const products = new Map((await data(client, '/products')).map((p) => [p.id, p]));
    for (const d of await data(client, '/deployments')) {
      if (d.adapter !== 'local') continue;
      const file = String(d.upstreamModel);
      const rows = byFile.get(file) ?? [];
      rows.push({ ...d, model: products.get(d.productId)?.model });
      byFile.set(file, rows);
    }
    return { client, byFile };
  } catch (error) {
    if (error instanceof ApiError || error instanceof ConnectionError)
      return { byFile, reason: error.message };
    throw error;
  }
}

async function list(parsed: Parsed, env: NodeJS.ProcessEnv, out: Out, err: Out): Promise<number> {
  if (parsed.positionals.length > 0) throw new UsageError('kaihub models list');
  const dir = modelsDir(parsed.values['models-dir'], env);
  const files = await localFiles(dir);
  const { byFile, reason } = await localDeployments(parsed, env);
  const rows = files.map((f) => {
    const deployments = byFile.get(f.file) ?? [];
    return {
      file: f.file,
      bytes: f.bytes,
      partial: f.partial,
      deployments: deployments.map((d) => ({
        id: d.id,
        productId: d.productId,
        model: d.model,
        status: d.status,
      })),
    };
  });
  if (parsed.values.json) {
    out.write(`${JSON.stringify({ modelsDir: dir, hub: reason ? null : 'ok', data: rows }, null, 2)}\n`);
  } else if (rows.length === 0) {
    out.write(`(없음 / none: ${dir})\n`);
  } else {
    const join = (r: (typeof rows)[number], key: 'model' | 'id' | 'status') =>
      r.deployments.map((d) => d[key]).join(',') || (reason || r.partial ? '' : '-');
    out.write(
      renderTable(
        [
          { header: '파일 File', value: (r) => (r.partial ? `${r.file} (받는 중 / incomplete)` : r.file) },
          { header: '크기 Size', value: (r) => mb(r.bytes), align: 'right' },
          { header: '상품 Product', value: (r) => join(r, 'model') },
          { header: '배포 Deployment', value: (r) => join(r, 'id') },
          { header: '상태 Status', value: (r) => join(r, 'status') },
        ],
        rows,
      ),
    );
  }
  if (reason) err.write(`허브에 묻지 못해 배포를 표시하지 않습니다 / deployments not shown: ${reason}\n`);
  return 0;
}

async function remove(parsed: Parsed, env: NodeJS.ProcessEnv, out: Out, err: Out): Promise<number> {
  const [given, ...extra] = parsed.positionals;
  if (!given || extra.length > 0) throw new UsageError('kaihub models rm <file>');
  const name = localName(given);
  const dir = modelsDir(parsed.values['models-dir'], env);
  const path = join(dir, name);
  const exists = async (p: string) =>
    stat(p).then(
      () => true,
      () => false,
    );
  const [whole, part] = await Promise.all([exists(path), exists(`${path}.part`)]);
  if (!whole && !part) throw new PullError(`${name}: 파일이 없습니다 / no such file in ${dir}`);
  // Disable first: a deployment must not point at a file that is gone.
  const { client, byFile, reason } = await localDeployments(parsed, env);
  const disabled: string[] = [];
  for (const d of byFile.get(name) ?? []) {
    if (d.status !== 'disabled') {
      await client!.request('PATCH', `/deployments/${encodeURIComponent(String(d.id))}`, {
        status: 'disabled',
      });
    }
    disabled.push(String(d.id));
  }
  if (reason) {
    err.write(
      `허브에 묻지 못했습니다. 이 파일을 쓰는 배포가 있으면 직접 끄세요 / could not reach the hub: disable any deployment of this file yourself (${reason})\n`,
    );
  }
  await rm(path, { force: true });
  await rm(`${path}.part`, { force: true });
  if (parsed.values.json) out.write(`${JSON.stringify({ file: name, deleted: true, disabled }, null, 2)}\n`);
  else {
    out.write(
      `삭제했습니다 / deleted ${name}` +
        (disabled.length > 0 ? `; 배포를 껐습니다 / disabled deployments ${disabled.join(', ')}` : '') +
        '\n',
    );
  }
  return 0;
}

export function modelsUsage(): string {
  return `kaihub models — 이 컴퓨터의 GGUF 모델 / GGUF models on this machine (KAIHUB_MODELS_DIR)

  kaihub models pull <huggingface-repo> [file] [--revision REV] [--model ID] [--no-register] [--models-dir DIR]
      Hugging Face에서 받아(이어받기, SHA-256 검사) 실행 중인 허브에 상품과 local 배포로 등록
      download (resumable, SHA-256 checked) and register a product with a local deployment in the hub
      [file]을 빼면 저장소의 .gguf 하나(여럿이면 Q4_K_M) / without [file]: the repository's one .gguf (Q4_K_M if several)
      --revision: 커밋·브랜치·태그에 고정 (기본 main) / pin a commit, branch or tag (default main)
  kaihub models list [--models-dir DIR]     파일, 크기, 쓰는 배포 / files, sizes, deployments using them
  kaihub models rm <file> [--models-dir DIR] 파일 삭제, 그 배포는 끔 / delete a file and disable its deployments

환경 / environment: KAIHUB_MODELS_DIR (기본 default ./data/models), KAIHUB_HF_ENDPOINT (기본 default
https://huggingface.co), HF_TOKEN (비공개·동의 필요 저장소 / gated or private repositories),
KAIHUB_URL (기본 default ${DEFAULT_URL}), KAIHUB_TOKEN or KAIHUB_ADMIN_TOKEN; --url, --token, --json as in kaihub help admin
`;
}

export async function runModelsCommand(
  args: string[],
  env: NodeJS.ProcessEnv,
  out: Out = process.stdout,
  err: Out = process.stderr,
): Promise<number> {
  const [verb = '', ...rest] = args;
  if (verb === '') {
    err.write(modelsUsage());
    return 1;
  }
  if (verb === 'help' || args.includes('--help') || args.includes('-h')) {
    out.write(modelsUsage());
    return 0;
  }
  try {
    const parsed = parse(rest);
    if (verb === 'pull') return await pull(parsed, env, out, err);
    if (verb === 'list' || verb === 'ls') return await list(parsed, env, out, err);
    if (verb === 'rm' || verb === 'remove') return await remove(parsed, env, out, err);
    throw new UsageError(`kaihub models: pull | list | rm (got "${verb}")`);
  } catch (error) {
    if (error instanceof UsageError) {
      err.write(`kaihub: ${error.message}\n도움말 / help: kaihub models help\n`);
    } else if (error instanceof PullError || error instanceof ConnectionError) {
      err.write(`kaihub: ${error.message}\n`);
    } else if (error instanceof ApiError) {
      err.write(`kaihub: ${error.message} (HTTP ${error.status})\n`);
    } else {
      throw error;
    }
    return 1;
  }
}
