import {
  lookup as dnsLookup,
  type LookupAddress,
  type LookupAllOptions,
  type LookupOneOptions,
} from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { Agent, buildConnector } from 'undici';
import { UPSTREAM_AGENT_OPTIONS } from './http.ts';

/**
 * Where a deployment whose URL a supplier admin set may connect: public addresses, and the private
 * networks the operator lists (`KAIHUB_SUPPLIER_NETWORKS`, e.g. a supplier's private link). Otherwise a
 * tenant could make the hub send requests into its own network — its database, a cloud metadata
 * service, the hub's own admin API — and learn from the deployment's health what answers there.
 * URLs the operator sets are trusted as they are (local models, vLLM next to the hub).
 */
const NOT_PUBLIC = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata services
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const)
  NOT_PUBLIC.addSubnet(network, prefix, 'ipv4');
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96], // NAT64: could reach any IPv4 address, private ones included
  ['100::', 64], // discard
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const)
  NOT_PUBLIC.addSubnet(network, prefix, 'ipv6');

const NOT_ALLOWED =
  "not a public address, and KAIHUB_SUPPLIER_NETWORKS does not allow it for a supplier admin's deployment";

const MAPPED_IPV4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;

/** A public unicast address: not loopback, private, link-local, shared, reserved or multicast. */
export function isPublicAddress(address: string): boolean {
  const mapped = MAPPED_IPV4.exec(address);
  if (mapped) return isPublicAddress(mapped[1]!);
  const family = isIP(address);
  if (family === 0) return false;
  return !NOT_PUBLIC.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/** `10.20.0.0/16, fd00:1::/64, 192.0.2.7` → a BlockList; undefined with a message when one is not a network. */
export function parseNetworks(list: string): { networks: BlockList } | { problem: string } {
  const networks = new BlockList();
  for (const entry of list
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    const [address, prefixText, extra] = entry.split('/');
    const family = isIP(address ?? '');
    const max = family === 4 ? 32 : 128;
    const prefix = prefixText === undefined ? max : Number(prefixText);
    if (family === 0 || extra !== undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > max)
      return { problem: `"${entry}" is not an address or a network (e.g. 10.20.0.0/16)` };
    networks.addSubnet(address!, prefix, family === 4 ? 'ipv4' : 'ipv6');
  }
  return { networks };
}

export class NetworkPolicy {
  constructor(private readonly allowed: BlockList = new BlockList()) {}

  /** Whether the hub may connect to this address for a supplier's deployment. */
  permits(address: string): boolean {
    if (isPublicAddress(address)) return true;
    const mapped = MAPPED_IPV4.exec(address)?.[1] ?? address;
    const family = isIP(mapped);
    return family !== 0 && this.allowed.check(mapped, family === 4 ? 'ipv4' : 'ipv6');
  }

  /**
   * What is wrong with a base URL a supplier admin sets, or undefined. Names are resolved when the hub
   * connects (a name's addresses can change after this check); here: https, unless the address is a
   * network the operator allows, and no address or local name that is not public.
   */
  urlProblem(baseUrl: string): string | undefined {
    let url: URL;
    try {
      url = new URL(baseUrl);
    } catch {
      return undefined; // the field's own validation names a malformed URL
    }
    const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
    if (isIP(host)) {
      if (!this.permits(host)) return `${host} is ${NOT_ALLOWED}`;
      if (url.protocol !== 'https:' && isPublicAddress(host))
        return 'must be https: the supplier credential travels with every call';
      return undefined;
    }
    if (host === 'localhost' || host.endsWith('.localhost')) return `${host} is this machine, ${NOT_ALLOWED}`;
    if (url.protocol !== 'https:') return 'must be https: the supplier credential travels with every call';
    return undefined;
  }

  /** `dns.lookup` that answers only with addresses this policy allows (every one of them). */
  readonly lookup = (
    hostname: string,
    options: LookupOneOptions | LookupAllOptions,
    callback: (
      error: NodeJS.ErrnoException | null,
      address: string | LookupAddress[],
      family?: number,
    ) => void,
  ): void => {
    this.resolve(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, '');
      for (const a of addresses)
        if (!this.permits(a.address))
          return callback(refusedError(`${hostname} resolves to ${a.address}, ${NOT_ALLOWED}`), '');
      if ((options as LookupAllOptions).all) return callback(null, addresses);
      const first = addresses[0];
      if (!first) return callback(refusedError(`${hostname} has no address`), '');
      callback(null, first.address, first.family);
    });
  };

  /** Overridable for tests: the resolver behind `lookup`. */
  resolve: (
    hostname: string,
    options: LookupAllOptions,
    callback: (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
  ) => void = (hostname, options, callback) => dnsLookup(hostname, options, callback);
}

function refusedError(message: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`kaihub refused to connect: ${message}`);
  error.code = 'EKAIHUBNETWORK';
  return error;
}

/**
 * The pool for deployments whose URL a supplier admin set: like the shared one, but every address it
 * connects to — resolved from a name at connect time, so a name that later points inside is caught —
 * must pass the policy. An address written in the URL is checked here too (no lookup happens for it).
 */
export function createSupplierAgent(policy: NetworkPolicy, connectTimeoutMs = 10_000): Agent {
  const connector = buildConnector({
    timeout: connectTimeoutMs,
    lookup: policy.lookup,
  } as buildConnector.BuildOptions);
  return new Agent({
    ...UPSTREAM_AGENT_OPTIONS,
    connect(options, callback) {
      const host = options.hostname.replace(/^\[|\]$/g, '');
      if (isIP(host) && !policy.permits(host)) {
        callback(refusedError(`${host} is ${NOT_ALLOWED}`), null);
        return;
      }
      connector(options, callback);
    },
  });
}
