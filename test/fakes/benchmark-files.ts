import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

/**
 * A file server on loopback for `kaihub eval pull`: `GET /files/<name>` with `Range: bytes=N-` (206
 * with Content-Range, 416 past the end), as Hugging Face's CDN and any static host answer.
 * Misbehaviour on demand: `cutOnce` sends half the body then drops the connection (once per file);
 * `wrongBytes` serves other bytes than the file's (a corrupted mirror); `ignoreRange` answers a range
 * with the whole file (200).
 */
export interface FakeFileServer {
  url: string;
  files: Map<string, Buffer>;
  requests: { path: string; range: string | undefined }[];
  cutOnce: Set<string>;
  wrongBytes: Set<string>;
  ignoreRange: Set<string>;
  close(): Promise<void>;
}

export async function startFakeFileServer(): Promise<FakeFileServer> {
  const state = {
    files: new Map<string, Buffer>(),
    requests: [] as FakeFileServer['requests'],
    cutOnce: new Set<string>(),
    wrongBytes: new Set<string>(),
    ignoreRange: new Set<string>(),
  };
  const serve = (req: IncomingMessage, res: ServerResponse) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://fake').pathname);
    state.requests.push({ path, range: req.headers.range });
    const name = path.replace(/^\/files\//, '');
    let content = path.startsWith('/files/') ? state.files.get(name) : undefined;
    if (!content) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    if (state.wrongBytes.has(name)) content = Buffer.from(content.map((b) => b ^ 0x55));
    const total = content.length;
    const match = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    let start = 0;
    if (match && !state.ignoreRange.has(name)) {
      start = Number(match[1]);
      if (start >= total) {
        res.writeHead(416, { 'content-range': `bytes */${total}` });
        res.end();
        return;
      }
      res.writeHead(206, {
        'content-length': total - start,
        'content-range': `bytes ${start}-${total - 1}/${total}`,
        'accept-ranges': 'bytes',
      });
    } else {
      res.writeHead(200, { 'content-length': total, 'accept-ranges': 'bytes' });
    }
    const body = content.subarray(start);
    if (state.cutOnce.delete(name)) {
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.socket?.destroy());
      return;
    }
    res.end(body);
  };
  const server = createServer(serve);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}
