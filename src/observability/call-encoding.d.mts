// Types of call-encoding.mjs (the records' shapes are in call-records.d.mts).
import type { CallData, EncodedCall } from './call-records.mjs';

/** The record as an array of its fields (children included), for JSON.stringify. */
export function encodeCall(call: CallData): EncodedCall;

/** The record back from `encodeCall`'s array (once parsed from JSON). */
export function decodeCall(encoded: EncodedCall): CallData;
