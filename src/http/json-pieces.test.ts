import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  decodePiece,
  encodePiece,
  type Piece,
  PieceAssembler,
  splitIntoPieces,
  weightUpTo,
} from './json-pieces.mjs';

/** Splits, sends every piece through a structured clone (as postMessage does), and reassembles. */
function roundTrip(
  value: object,
  budget: number,
): { result: unknown; pieces: Piece[]; weights: number[]; encodings: string[] } {
  const pieces: Piece[] = [];
  const encodings: string[] = [];
  splitIntoPieces(value, budget, (piece, holdsLongString) => {
    const message = encodePiece(piece, holdsLongString);
    encodings.push(typeof message);
    pieces.push(decodePiece(structuredClone(message)));
  });
  // weighed before assembly, which fills the root placeholder in place
  const weights = pieces.map((p) =>
    weightUpTo(
      p.kind === 'root' ? p.value : p.kind === 'items' ? p.items : p.entries,
      Number.POSITIVE_INFINITY,
    ),
  );
  const assembler = new PieceAssembler();
  for (const piece of pieces) assembler.apply(piece);
  return { result: assembler.root, pieces, weights, encodings };
}

function assertBounded(weights: number[], budget: number): void {
  for (const weight of weights) assert.ok(weight < 2 * budget, `a piece of weight ${weight}`);
}

test('a body under the budget is one piece, the value itself', () => {
  const body = { model: 'm', messages: [{ role: 'user', content: '안녕' }] };
  const { result, pieces } = roundTrip(body, 1024);
  assert.equal(pieces.length, 1);
  assert.deepEqual(result, body);
});

test('a long conversation comes back equal, key order included, in pieces of bounded weight', () => {
  const messages = Array.from({ length: 5_000 }, (_, i) => ({
    role: i % 2 ? 'assistant' : 'user',
    content: `${i}번째 메시지 `.repeat(5),
  }));
  const body = { model: 'm', messages, temperature: 0.5, stream: true };
  const budget = 16 * 1024;
  const { result, pieces, weights } = roundTrip(body, budget);
  assert.equal(JSON.stringify(result), JSON.stringify(body));
  assert.ok(pieces.length > 20, `${pieces.length} pieces`);
  assertBounded(weights, budget);
});

test('heavy containers are opened at any depth, not only at the top', () => {
  // what an attacker would send to defeat a splitter that only cuts `messages`
  const body = { x: { y: Array.from({ length: 20_000 }, (_, i) => [i, { z: [i] }]) }, after: 'end' };
  const budget = 8 * 1024;
  const { result, pieces, weights } = roundTrip(body, budget);
  assert.equal(JSON.stringify(result), JSON.stringify(body));
  assert.ok(pieces.length > 20, `${pieces.length} pieces`);
  assertBounded(weights, budget);
  // a heavy top-level array, and heavy objects inside an array
  const array = Array.from({ length: 50 }, (_, i) => ({
    i,
    big: 'x'.repeat(1_000),
    list: Array(300).fill(i),
  }));
  assert.deepEqual(roundTrip(array, 2048).result, array);
});

test('a string heavier than the budget travels whole, in its own piece', () => {
  const image = `data:image/png;base64,${'A'.repeat(100_000)}`;
  const body = {
    model: 'm',
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'hi' },
          { type: 'image_url', image_url: { url: image } },
        ],
      },
    ],
  };
  const { result, pieces, encodings } = roundTrip(body, 4096);
  assert.deepEqual(result, body);
  const i = pieces.findIndex((p) => p.kind === 'entries' && p.entries.includes(image));
  assert.ok(i !== -1, 'the image travels in one piece');
  assert.equal(encodings[i], 'object', 'as a structured clone, not as JSON text');
  assert.ok(encodings.filter((e) => e === 'string').length > 0, 'the other pieces as JSON text');
});

test('`__proto__` stays an own key, as JSON.parse makes it, and pollutes nothing', () => {
  const body = JSON.parse(`{"a":"${'x'.repeat(5000)}","__proto__":{"polluted":true},"b":[1,2,3]}`);
  const { result } = roundTrip(body, 1024);
  assert.equal(JSON.stringify(result), JSON.stringify(body));
  assert.ok(Object.hasOwn(result as object, '__proto__'));
  assert.equal(Object.getPrototypeOf(result), Object.prototype);
  assert.equal(({} as { polluted?: boolean }).polluted, undefined);
});
