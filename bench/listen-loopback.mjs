// Preload (`node --import ./bench/listen-loopback.mjs ...`) that forces every
// TCP listen() in the process onto 127.0.0.1. The Portkey gateway calls
// `server.listen(port, undefined, cb)`, which would bind all interfaces; the
// benchmark must only ever expose loopback addresses.
import net from 'node:net';

const LOOPBACK = '127.0.0.1';
const originalListen = net.Server.prototype.listen;

function isPort(value) {
  return typeof value === 'number' || (typeof value === 'string' && /^\d+$/.test(value));
}

net.Server.prototype.listen = function listenOnLoopback(...args) {
  const [first] = args;
  if (first !== null && typeof first === 'object' && !Array.isArray(first)) {
    // Options form. Leave unix sockets and inherited handles alone: they are
    // not reachable from the network anyway.
    if (
      first.path === undefined &&
      first.fd === undefined &&
      first._handle === undefined &&
      first.handle === undefined
    ) {
      args[0] = { ...first, host: LOOPBACK };
    }
  } else if (isPort(first) || first === undefined) {
    // Positional form: listen(port?, host?, backlog?, cb?). Every argument after
    // the port that is not a callback is host-or-backlog; the host comes first.
    const rest = args.slice(1);
    const cbIndex = rest.findIndex((a) => typeof a === 'function');
    const cb = cbIndex >= 0 ? rest[cbIndex] : undefined;
    const plain = cbIndex >= 0 ? rest.slice(0, cbIndex) : rest;
    let backlog;
    if (plain.length >= 2) backlog = plain[1];
    else if (plain.length === 1 && typeof plain[0] === 'number') backlog = plain[0];
    const rebuilt = [first ?? 0, LOOPBACK];
    if (backlog !== undefined) rebuilt.push(backlog);
    if (cb) rebuilt.push(cb);
    args = rebuilt;
  }
  return originalListen.apply(this, args);
};
