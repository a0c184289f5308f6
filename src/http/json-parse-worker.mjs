// A parse worker: decodes, parses and checks one large request body at a time, then sends it back in
// pieces on its pieces port and says how many on the parent port once they are all queued (the
// protocol's types: ParseJob and ParseJobResult in json-parse-pool.ts). Plain JavaScript: without the
// TypeScript loader a worker starts in ≈ 0.1 s instead of ≈ 1 s (docs/decisions/0012).
import { parentPort, workerData } from 'node:worker_threads';
import { JsonBodyFailure, parseJsonObjectText } from './json-limits.mjs';
import { encodePiece, splitIntoPieces } from './json-pieces.mjs';

const pieces = workerData.pieces;

parentPort.on('message', (job) => {
  const text = Buffer.concat(job.chunks).toString('utf8');
  const result = parseJsonObjectText(text, job.maxDepth);
  if (result instanceof JsonBodyFailure) {
    const failure = { code: result.code, message: result.message, path: result.path };
    parentPort.postMessage({ id: job.id, pieces: 0, failure });
    return;
  }
  let count = 0;
  splitIntoPieces(result, job.pieceWeight, (piece, holdsLongString) => {
    pieces.postMessage(encodePiece(piece, holdsLongString));
    count++;
  });
  parentPort.postMessage({ id: job.id, pieces: count, failure: null });
});
