import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { JsonBodyFailure, parseJsonObjectText } from './json-limits.ts';
import type { ParseJob, ParseJobResult } from './json-parse-pool.ts';
import { encodePiece, splitIntoPieces } from './json-pieces.ts';

/**
 * A parse worker: decodes, parses and checks one large body at a time, then sends it back in pieces
 * on its pieces port, and says how many on the parent port once they are all queued.
 */
const pieces = (workerData as { pieces: MessagePort }).pieces;
const parent = parentPort as MessagePort;

parent.on('message', (job: ParseJob) => {
  const text = Buffer.concat(job.chunks).toString('utf8');
  const result = parseJsonObjectText(text, job.maxDepth);
  let reply: ParseJobResult;
  if (result instanceof JsonBodyFailure) {
    reply = {
      id: job.id,
      pieces: 0,
      failure: { code: result.code, message: result.message, path: result.path },
    };
  } else {
    let count = 0;
    splitIntoPieces(result, job.pieceWeight, (piece, holdsLongString) => {
      pieces.postMessage(encodePiece(piece, holdsLongString));
      count++;
    });
    reply = { id: job.id, pieces: count, failure: null };
  }
  parent.postMessage(reply);
});
