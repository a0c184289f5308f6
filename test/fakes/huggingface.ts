import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/**
 * A fake Hugging Face Hub on loopback, faithful to what `kaihub models pull` uses:
 * `GET /api/models/{repo}?blobs=true` (siblings with `rfilename`, `size`, and `lfs.{sha256,size}` for
 * LFS files), and `GET /{repo}/resolve/main/{file}`, which redirects (302) to a CDN path that serves
 * the bytes with `Range: bytes=N-` support (206 + Content-Range, 416 past the end). A pinned revision
 * is `GET /api/models/{repo}/revision/{rev}` and `/{repo}/resolve/{rev}/{file}`; the files of revision
 * `rev` are those of the `repos` entry `{repo}@{rev}` (`{repo}` alone is `main`).
 *
 * Misbehaviour on demand: `cutOnce` sends half of a file and drops the connection (once per file),
 * `wrongSha` publishes a wrong checksum, `ignoreRange` answers a range request with the whole file (200).
 */
export interface FakeHfFile {
  content: Buffer;
  /** Stored in LFS (GGUF files are): the API lists its SHA-256. */
  lfs?: boolean;
}

export interface FakeHfRequest {
  method: string;
  path: string;
  range: string | undefined;
  authorization: string | undefined;
}

export interface FakeHuggingFace {
  url: string;
  repos: Map<string, Map<string, FakeHfFile>>;
  requests: FakeHfRequest[];
  cutOnce: Set<string>;
  wrongSha: Set<string>;
  ignoreRange: Set<string>;
  close(): Promise<void>;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export async function startFakeHuggingFace(): Promise<FakeHuggingFace> {
  const fake: Omit<FakeHuggingFace, 'url' | 'close'> = {
    repos: new Map(),
    requests: [],
    cutOnce: new Set(),
    wrongSha: new Set(),
    ignoreRange: new Set(),
  };

  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };

  const key = (repo: string, revision: string) => (revision === 'main' ? repo : `${repo}@${revision}`);

  function api(res: ServerResponse, repo: string, revision: string): void {
    const files = fake.repos.get(key(repo, revision));
    if (!files) {
      json(res, 404, { error: revision === 'main' ? 'Repository not found' : 'Invalid rev id' });
      return;
    }
    json(res, 200, {
      id: repo,
      modelId: repo,
      sha: 'f'.repeat(40),
      siblings: [...files].map(([name, f]) => ({
        rfilename: name,
        size: f.content.length,
        ...(f.lfs && {
          blobId: 'b'.repeat(40),
          lfs: {
            sha256: fake.wrongSha.has(name) ? sha256(Buffer.from('not this file')) : sha256(f.content),
            size: f.content.length,
            pointerSize: 134,
          },
        }),
      })),
    });
  }

  function serveFile(req: IncomingMessage, res: ServerResponse, name: string, file: FakeHfFile): void {
    const total = file.content.length;
    const match = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    let start = 0;
    if (match && !fake.ignoreRange.has(name)) {
      start = Number(match[1]);
      if (start >= total) {
        res.writeHead(416, { 'content-range': `bytes */${total}` });
        res.end();
        return;
      }
      res.writeHead(206, {
        'content-type': 'application/octet-stream',
        'content-length': total - start,
        'content-range': `bytes ${start}-${total - 1}/${total}`,
        'accept-ranges': 'bytes',
      });
    } else {
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': total,
        'accept-ranges': 'bytes',
      });
    }
    const body = file.content.subarray(start);
    if (fake.cutOnce.delete(name)) {
      // Half the bytes, then the connection drops, as a flaky network does.
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.socket?.destroy());
      return;
    }
    res.end(body);
  }

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    fake.requests.push({
      method: req.method ?? 'GET',
      path: url.pathname,
      range: req.headers.range,
      authorization: req.headers.authorization,
    });
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    if (parts[0] === 'api' && parts[1] === 'models' && parts.length === 4) {
      return api(res, `${parts[2]}/${parts[3]}`, 'main');
    }
    if (parts[0] === 'api' && parts[1] === 'models' && parts.length === 6 && parts[4] === 'revision') {
      return api(res, `${parts[2]}/${parts[3]}`, parts[5]!);
    }
    // /{owner}/{name}/resolve/{revision}/{file…} → the CDN, like the real Hub's LFS redirect
    if (parts[2] === 'resolve' && parts.length > 4) {
      const stored = key(`${parts[0]}/${parts[1]}`, parts[3]!);
      const name = parts.slice(4).join('/');
      if (!fake.repos.get(stored)?.has(name)) return json(res, 404, { error: 'Entry not found' });
      res.writeHead(302, {
        location: `/cdn/${stored}/${parts.slice(4).map(encodeURIComponent).join('/')}`,
      });
      res.end();
      return;
    }
    if (parts[0] === 'cdn' && parts.length > 3) {
      const name = parts.slice(3).join('/');
      const file = fake.repos.get(`${parts[1]}/${parts[2]}`)?.get(name);
      if (file) return serveFile(req, res, name, file);
    }
    json(res, 404, { error: 'not found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return Object.assign(fake, {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}
