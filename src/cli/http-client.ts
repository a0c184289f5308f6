/**
 * The operator CLI's only way into the hub: /admin/v1 over HTTP, the same way every other client uses it.
 * Failures come back as one of two errors, so the commands can print them and exit 1.
 */

export const DEFAULT_URL = 'http://127.0.0.1:8080';
const TIMEOUT_MS = 30_000;

export interface FieldProblem {
  field: string;
  message: string;
}

/** The hub answered, but not with success: its `{error: {code, message, fields?}}`. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields: FieldProblem[],
    readonly body: unknown,
  ) {
    super(message);
  }
}

/** The hub could not be reached at all, or the CLI was not told enough to try. */
export class ConnectionError extends Error {
  override name = 'ConnectionError';
}

export interface Connection {
  url: string;
  token: string;
}

/**
 * `--url` / `KAIHUB_URL`, and `--token` / `KAIHUB_TOKEN` (the operator token or a personal access
 * token) / `KAIHUB_ADMIN_TOKEN` (the hub's own setting, so an operator's shell needs only that);
 * flags win over the environment.
 */
export function resolveConnection(
  flags: { url?: string | undefined; token?: string | undefined },
  env: NodeJS.ProcessEnv,
): Connection {
  const raw = (flags.url ?? env.KAIHUB_URL ?? DEFAULT_URL).trim();
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConnectionError(
      `허브 주소가 올바르지 않습니다 / invalid hub URL: "${raw}" (--url, KAIHUB_URL)`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConnectionError(`허브 주소는 http(s)여야 합니다 / hub URL must be http(s): "${raw}"`);
  }
  const token = (flags.token ?? (env.KAIHUB_TOKEN || undefined) ?? env.KAIHUB_ADMIN_TOKEN ?? '').trim();
  if (!token) {
    throw new ConnectionError(
      '토큰이 없습니다 / no token: give --token, or set KAIHUB_TOKEN (a personal access token) or KAIHUB_ADMIN_TOKEN (the operator token)',
    );
  }
  return { url: raw.replace(/\/+$/, ''), token };
}

/** Node's fetch hides the reason in `cause`; these are the ones worth a sentence of their own. */
function describeNetworkFailure(error: unknown, url: string): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code ?? (error as { name?: string }).name ?? 'error';
  const reason =
    code === 'ECONNREFUSED'
      ? '연결이 거부되었습니다. 허브가 실행 중인가요? / connection refused — is the hub running?'
      : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
        ? '호스트를 찾을 수 없습니다 / host not found'
        : code === 'TimeoutError' || code === 'UND_ERR_CONNECT_TIMEOUT'
          ? '응답 시간이 초과되었습니다 / timed out'
          : (cause?.message ?? (error as Error).message ?? code);
  return `허브에 연결할 수 없습니다 / cannot reach the hub at ${url}: ${reason}`;
}

export class AdminClient {
  constructor(private readonly connection: Connection) {}

  /**
   * Calls `/admin/v1<path>` and returns the parsed body (undefined for 204). Anything but a 2xx
   * becomes an ApiError carrying the hub's own message and field problems.
   */
  async request(method: string, path: string, body?: unknown): Promise<unknown> {
    return this.send(method, path, body, false);
  }

  /** A download (a statement as CSV or XLSX): its bytes; an error answer is an ApiError as above. */
  async download(path: string): Promise<Buffer> {
    return this.send('GET', path, undefined, true) as Promise<Buffer>;
  }

  private async send(method: string, path: string, body: unknown, raw: boolean): Promise<unknown> {
    const url = `${this.connection.url}/admin/v1${path}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${this.connection.token}`,
          ...(body !== undefined && { 'content-type': 'application/json' }),
        },
        ...(body !== undefined && { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (error) {
      throw new ConnectionError(describeNetworkFailure(error, this.connection.url));
    }
    if (raw && res.ok) return Buffer.from(await res.arrayBuffer());
    const text = await res.text();
    let parsed: unknown;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        // Not the hub (a proxy's HTML page, another service on that port): say so plainly.
        throw new ApiError(
          res.status,
          'not_json',
          `허브가 아닌 응답입니다 / not a K-AI Hub response (HTTP ${res.status}) from ${url}`,
          [],
          text,
        );
      }
    }
    if (res.ok) return parsed;
    const error = (parsed as { error?: { code?: string; message?: string; fields?: FieldProblem[] } })?.error;
    throw new ApiError(
      res.status,
      error?.code ?? 'http_error',
      error?.message ?? `HTTP ${res.status}`,
      Array.isArray(error?.fields) ? error.fields : [],
      parsed,
    );
  }
}
