import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A Kubernetes API server as far as the `kubernetes` provisioner uses it, strict about what it is
 * sent: a bearer token, JSON bodies whose apiVersion, kind, name and namespace match the path, a
 * `resourceVersion` on every replace that matches the stored one (else 409 Conflict, as the real
 * server's optimistic concurrency does), AlreadyExists on a second create, NotFound as a v1 Status.
 * Namespaces, ResourceQuotas, RoleBindings, pods (deletecollection), Kueue ClusterQueues and
 * LocalQueues, kept in memory; `requests` records every call, `down` answers 503 to everything.
 */

type Obj = Record<string, any>;

interface Kind {
  /** Path pattern; groups: namespace (if namespaced), then name (if any). */
  pattern: RegExp;
  apiVersion: string;
  kind: string;
  namespaced: boolean;
  store: string;
}

const KINDS: Kind[] = [
  {
    pattern: /^\/api\/v1\/namespaces(?:\/([^/]+))?$/,
    apiVersion: 'v1',
    kind: 'Namespace',
    namespaced: false,
    store: 'namespaces',
  },
  {
    pattern: /^\/api\/v1\/namespaces\/([^/]+)\/resourcequotas(?:\/([^/]+))?$/,
    apiVersion: 'v1',
    kind: 'ResourceQuota',
    namespaced: true,
    store: 'resourcequotas',
  },
  {
    pattern: /^\/apis\/rbac\.authorization\.k8s\.io\/v1\/namespaces\/([^/]+)\/rolebindings(?:\/([^/]+))?$/,
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    namespaced: true,
    store: 'rolebindings',
  },
  {
    pattern: /^\/api\/v1\/namespaces\/([^/]+)\/pods(?:\/([^/]+))?$/,
    apiVersion: 'v1',
    kind: 'Pod',
    namespaced: true,
    store: 'pods',
  },
  {
    pattern: /^\/apis\/kueue\.x-k8s\.io\/v1beta1\/clusterqueues(?:\/([^/]+))?$/,
    apiVersion: 'kueue.x-k8s.io/v1beta1',
    kind: 'ClusterQueue',
    namespaced: false,
    store: 'clusterqueues',
  },
  {
    pattern: /^\/apis\/kueue\.x-k8s\.io\/v1beta1\/namespaces\/([^/]+)\/localqueues(?:\/([^/]+))?$/,
    apiVersion: 'kueue.x-k8s.io/v1beta1',
    kind: 'LocalQueue',
    namespaced: true,
    store: 'localqueues',
  },
];

export interface FakeKubernetes {
  url: string;
  requests: { method: string; path: string; body: Obj | null }[];
  /** Objects by store, keyed `namespace/name` (or `name`). */
  objects: Record<string, Map<string, Obj>>;
  get(store: string, key: string): Obj | undefined;
  /** Changes an object behind the hub's back (drift), bumping its resourceVersion. */
  edit(store: string, key: string, change: (o: Obj) => void): void;
  addPod(namespace: string, name: string): void;
  down: boolean;
  close(): Promise<void>;
}

function status(res: ServerResponse, code: number, reason: string, message: string) {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(
    JSON.stringify({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message,
      reason,
      code,
    }),
  );
}

function send(res: ServerResponse, code: number, body: unknown) {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startFakeKubernetes(token: string): Promise<FakeKubernetes> {
  let version = 1;
  const objects: Record<string, Map<string, Obj>> = Object.fromEntries(
    KINDS.map((k) => [k.store, new Map()]),
  );
  const fake: FakeKubernetes = {
    url: '',
    requests: [],
    objects,
    get: (store, key) => objects[store]!.get(key),
    edit(store, key, change) {
      const o = objects[store]!.get(key);
      if (!o) throw new Error(`no ${store} ${key}`);
      change(o);
      o.metadata.resourceVersion = String(++version);
    },
    addPod(namespace, name) {
      objects.pods!.set(`${namespace}/${name}`, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace, resourceVersion: String(++version) },
      });
    },
    down: false,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };

  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const raw = await readBody(req);
    let body: Obj | null = null;
    if (raw !== '') {
      try {
        body = JSON.parse(raw);
      } catch {
        return status(res, 400, 'BadRequest', 'the body is not JSON');
      }
    }
    fake.requests.push({ method: req.method ?? '', path: url.pathname, body });
    if (fake.down) return status(res, 503, 'ServiceUnavailable', 'the API server is down');
    if (req.headers.authorization !== `Bearer ${token}`)
      return status(res, 401, 'Unauthorized', 'Unauthorized');
    if (body !== null && !String(req.headers['content-type'] ?? '').includes('json'))
      return status(res, 415, 'UnsupportedMediaType', 'a JSON body is sent as JSON');
    for (const k of KINDS) {
      const m = k.pattern.exec(url.pathname);
      if (!m) continue;
      const namespace = k.namespaced ? m[1]! : undefined;
      const name = k.namespaced ? m[2] : m[1];
      const store = objects[k.store]!;
      const key = (n: string) => (namespace ? `${namespace}/${n}` : n);
      if (
        namespace &&
        k.store !== 'namespaces' &&
        !objects.namespaces!.has(namespace) &&
        req.method !== 'GET'
      )
        return status(res, 404, 'NotFound', `namespaces "${namespace}" not found`);
      const checkShape = (o: Obj | null): string | undefined => {
        if (!o) return 'a body is required';
        if (o.apiVersion !== undefined && o.apiVersion !== k.apiVersion)
          return `apiVersion must be ${k.apiVersion}`;
        if (o.kind !== undefined && o.kind !== k.kind) return `kind must be ${k.kind}`;
        if (typeof o.metadata?.name !== 'string') return 'metadata.name is required';
        if (namespace && o.metadata.namespace !== undefined && o.metadata.namespace !== namespace)
          return 'metadata.namespace does not match the path';
        if (k.kind === 'ResourceQuota' && typeof o.spec?.hard !== 'object') return 'spec.hard is required';
        if (k.kind === 'RoleBinding' && o.roleRef?.kind !== 'ClusterRole') return 'roleRef is required';
        if (k.kind === 'ClusterQueue' && !Array.isArray(o.spec?.resourceGroups))
          return 'spec.resourceGroups is required';
        return undefined;
      };
      if (req.method === 'GET' && name) {
        const o = store.get(key(name));
        return o
          ? send(res, 200, o)
          : status(res, 404, 'NotFound', `${k.kind.toLowerCase()}s "${name}" not found`);
      }
      if (req.method === 'POST' && !name) {
        const problem = checkShape(body);
        if (problem) return status(res, 422, 'Invalid', problem);
        const n = body!.metadata.name as string;
        if (store.has(key(n)))
          return status(res, 409, 'AlreadyExists', `${k.kind.toLowerCase()}s "${n}" already exists`);
        const o = {
          apiVersion: k.apiVersion,
          kind: k.kind,
          ...body,
          metadata: { ...body!.metadata, namespace, resourceVersion: String(++version) },
        };
        store.set(key(n), o);
        return send(res, 201, o);
      }
      if (req.method === 'PUT' && name) {
        const problem = checkShape(body);
        if (problem) return status(res, 422, 'Invalid', problem);
        const current = store.get(key(name));
        if (!current) return status(res, 404, 'NotFound', `${k.kind.toLowerCase()}s "${name}" not found`);
        if (body!.metadata.resourceVersion !== current.metadata.resourceVersion)
          return status(
            res,
            409,
            'Conflict',
            'the object has been modified; please apply your changes to the latest version',
          );
        const o = {
          apiVersion: k.apiVersion,
          kind: k.kind,
          ...body,
          metadata: { ...body!.metadata, namespace, resourceVersion: String(++version) },
        };
        store.set(key(name), o);
        return send(res, 200, o);
      }
      if (req.method === 'DELETE' && !name && k.store === 'pods') {
        for (const podKey of [...store.keys()]) if (podKey.startsWith(`${namespace}/`)) store.delete(podKey);
        return send(res, 200, { kind: 'Status', apiVersion: 'v1', status: 'Success' });
      }
      return status(res, 405, 'MethodNotAllowed', `${req.method} ${url.pathname}`);
    }
    return status(res, 404, 'NotFound', `the server could not find the requested resource (${url.pathname})`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}

/** Prometheus's HTTP API `/api/v1/query`, answering an instant vector per namespace. */
export interface FakePrometheus {
  url: string;
  /** namespace → the number the next query gives it (samples of a GPU). */
  samples: Map<string, number>;
  /** namespace → its GPUs' mean DCGM_FI_DEV_GPU_UTIL (%), for `sum_over_time` queries; default 100. */
  utilisation: Map<string, number>;
  /** When set, every query is answered 503 (Prometheus or its storage down). */
  down: boolean;
  queries: string[];
  close(): Promise<void>;
}

export async function startFakePrometheus(): Promise<FakePrometheus> {
  const fake: FakePrometheus = {
    url: '',
    samples: new Map(),
    utilisation: new Map(),
    down: false,
    queries: [],
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/api/v1/query') return send(res, 404, { status: 'error', error: 'not found' });
    const query = url.searchParams.get('query') ?? '';
    fake.queries.push(query);
    if (fake.down) return send(res, 503, { status: 'error', errorType: 'unavailable', error: 'down' });
    const wanted = /namespace=~"([^"]*)"/.exec(query)?.[1]?.split('|') ?? [];
    const time = Number(url.searchParams.get('time'));
    send(res, 200, {
      status: 'success',
      data: {
        resultType: 'vector',
        result: [...fake.samples]
          .filter(([ns]) => wanted.includes(ns))
          .map(([namespace, n]) => ({
            metric: { namespace },
            // count_over_time: GPU-samples; sum_over_time: the samples' utilisation summed
            value: [
              time,
              String(query.includes('sum_over_time') ? n * (fake.utilisation.get(namespace) ?? 100) : n),
            ],
          })),
      },
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}
