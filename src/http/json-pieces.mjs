/**
 * A parsed JSON value cut into pieces of bounded size, and put back together in order.
 *
 * A large body is parsed in a worker thread (see json-parse-pool.ts); handing the result back
 * costs the event loop a deserialisation, which for a 16 MB body of small objects takes as long as
 * JSON.parse itself. Cut into pieces, taken one per event-loop turn, it costs about as much in total
 * but only a few milliseconds at once, so the requests of everyone else go on in between.
 *
 * Any container heavier than the budget is opened, at any depth: a piece carries a batch of array
 * items or object entries, and a heavy child inside a batch travels as an empty placeholder filled
 * by the pieces that follow. Only a single string heavier than the budget stays whole.
 *
 * How a piece travels (measured, docs/decisions/0012): as JSON text, parsed again on the event
 * loop, unless it holds such a long string. For objects, JSON.parse allocates about half the
 * young-generation memory a structured-clone deserialisation does (keys and short strings are
 * internalised), and every byte of it is copied again by the next scavenges, the longest pauses
 * left. A long string is the reverse: a structured clone copies it, JSON.parse decodes it.
 *
 * Plain JavaScript (types in json-pieces.d.mts), like json-limits.mjs: the parse workers load it
 * without the TypeScript loader.
 */

/**
 * The weight of a value is roughly what taking it back costs: strings by their length, every other
 * value a fixed amount (an object or array costs about as much as a 200-character string).
 */
const CONTAINER_WEIGHT = 200;
const SCALAR_WEIGHT = 16;

/** Pieces of about this weight take 1–3 ms to take back (benchmark machine, docs/benchmarks.md). */
export const DEFAULT_PIECE_WEIGHT = 512 * 1024;

const isContainer = (v) => typeof v === 'object' && v !== null;

/**
 * The weight of `value`, counted up to a little past `cap` (then the walk stops). Recursive: only
 * called on values already checked to nest no deeper than MAX_JSON_DEPTH.
 */
export function weightUpTo(value, cap) {
  if (typeof value === 'string') return SCALAR_WEIGHT + value.length;
  if (!isContainer(value)) return SCALAR_WEIGHT;
  let weight = CONTAINER_WEIGHT;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length && weight <= cap; i++) weight += weightUpTo(value[i], cap - weight);
  } else {
    for (const key in value) {
      weight += SCALAR_WEIGHT + key.length + weightUpTo(value[key], cap - weight);
      if (weight > cap) break;
    }
  }
  return weight;
}

/**
 * Calls `emit(piece, holdsLongString)` with the pieces of `root` in the order `PieceAssembler` must
 * apply them; `holdsLongString`: the piece carries a single string heavier than the budget.
 */
export function splitIntoPieces(root, budget, emit) {
  if (weightUpTo(root, budget) <= budget) {
    emit({ kind: 'root', value: root }, false);
    return;
  }
  emit({ kind: 'root', value: Array.isArray(root) ? [] : {} }, false);
  splitContainer(root, [], budget, emit);
}

/** What crosses the thread boundary for a piece: JSON text, or the piece itself when it holds a long string. */
export function encodePiece(piece, holdsLongString) {
  return holdsLongString ? piece : JSON.stringify(piece);
}

export function decodePiece(message) {
  return typeof message === 'string' ? JSON.parse(message) : message;
}

function splitContainer(container, path, budget, emit) {
  const isArray = Array.isArray(container);
  const keys = isArray ? null : Object.keys(container);
  const size = keys === null ? container.length : keys.length;
  let batch = [];
  let heavy = [];
  let weight = 0;
  let holdsLongString = false;
  const flush = () => {
    if (batch.length > 0) {
      const piece = isArray
        ? { kind: 'items', path, items: batch }
        : { kind: 'entries', path, entries: batch };
      emit(piece, holdsLongString);
    }
    // the placeholders now exist on the other side: fill them
    for (const [key, child] of heavy) splitContainer(child, [...path, key], budget, emit);
    batch = [];
    heavy = [];
    weight = 0;
    holdsLongString = false;
  };
  for (let i = 0; i < size; i++) {
    const key = keys === null ? i : keys[i];
    const child = container[key];
    const childWeight = weightUpTo(child, budget);
    let value = child;
    if (childWeight > budget && isContainer(child)) {
      value = Array.isArray(child) ? [] : {};
      heavy.push([key, child]);
      weight += CONTAINER_WEIGHT;
    } else {
      weight += childWeight;
      if (childWeight > budget) holdsLongString = true;
    }
    if (keys === null) batch.push(value);
    else batch.push(key, value);
    if (weight >= budget) flush();
  }
  flush();
}

/** Rebuilds the value from its pieces, applied in the order they were emitted. */
export class PieceAssembler {
  root = undefined;

  apply(piece) {
    if (piece.kind === 'root') {
      this.root = piece.value;
      return;
    }
    let target = this.root;
    for (const key of piece.path) target = target[key];
    if (piece.kind === 'items') {
      for (const item of piece.items) target.push(item);
      return;
    }
    const entries = piece.entries;
    for (let i = 0; i < entries.length; i += 2) {
      const key = entries[i];
      // `__proto__` is an ordinary key in JSON (JSON.parse makes it an own property); assigning it
      // would set the prototype instead
      if (key === '__proto__') {
        Object.defineProperty(target, key, {
          value: entries[i + 1],
          writable: true,
          enumerable: true,
          configurable: true,
        });
      } else {
        target[key] = entries[i + 1];
      }
    }
  }
}
