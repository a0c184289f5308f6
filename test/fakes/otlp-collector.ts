/**
 * A local OTLP/HTTP trace receiver for tests: `POST /v1/traces` with an ExportTraceServiceRequest in
 * either encoding an OpenTelemetry SDK sends (`application/json` or `application/x-protobuf`, optionally
 * gzip), answered as a collector answers (200 with an empty ExportTraceServiceResponse in the same
 * encoding). Every span received is kept, flattened, with its resource and scope, in one shape whatever
 * the encoding: ids as lowercase hex, attributes as plain values (int64 as numbers), times as bigint ns.
 *
 * The protobuf reader below covers the fields of opentelemetry/proto/trace/v1/trace.proto,
 * common/v1/common.proto and resource/v1/resource.proto that a trace export uses; unknown fields are
 * skipped by wire type, as protobuf requires.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync } from 'node:zlib';

export type AttributeValue =
  | string
  | number
  | boolean
  | null
  | AttributeValue[]
  | { [key: string]: AttributeValue };

export interface CollectedSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  traceState: string;
  name: string;
  /** OTLP SpanKind: 1 INTERNAL, 2 SERVER, 3 CLIENT, 4 PRODUCER, 5 CONSUMER. */
  kind: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes: Record<string, AttributeValue>;
  events: { name: string; attributes: Record<string, AttributeValue> }[];
  /** OTLP StatusCode: 0 UNSET, 1 OK, 2 ERROR. */
  status: { code: number; message: string };
  resource: Record<string, AttributeValue>;
  scope: string;
}

export interface ReceivedExport {
  contentType: string;
  headers: IncomingMessage['headers'];
  spanCount: number;
}

// ---- protobuf wire format ---------------------------------------------------------------------------

class ProtoReader {
  private pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.buf.length) throw new Error('protobuf: truncated varint');
      const byte = this.buf[this.pos++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 63n) throw new Error('protobuf: varint too long');
    }
  }

  tag(): { field: number; wire: number } {
    const key = Number(this.varint());
    return { field: key >>> 3, wire: key & 7 };
  }

  bytes(): Uint8Array {
    const length = Number(this.varint());
    if (this.pos + length > this.buf.length) throw new Error('protobuf: truncated field');
    const out = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }

  string(): string {
    return Buffer.from(this.bytes()).toString('utf8');
  }

  fixed64(): Uint8Array {
    if (this.pos + 8 > this.buf.length) throw new Error('protobuf: truncated fixed64');
    const out = this.buf.subarray(this.pos, this.pos + 8);
    this.pos += 8;
    return out;
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw new Error(`protobuf: unsupported wire type ${wire}`);
  }
}

/** Calls `onField` for each field of a message; the handler reads the value or returns false to skip it. */
function readMessage(
  buf: Uint8Array,
  onField: (r: ProtoReader, field: number, wire: number) => boolean,
): void {
  const r = new ProtoReader(buf);
  while (!r.done) {
    const { field, wire } = r.tag();
    if (!onField(r, field, wire)) r.skip(wire);
  }
}

/** Calls `onValue` with each length-delimited value of field `wanted`, skipping every other field. */
function readEach(buf: Uint8Array, wanted: number, onValue: (bytes: Uint8Array) => void): void {
  readMessage(buf, (r, field, wire) => {
    if (field !== wanted || wire !== 2) return false;
    onValue(r.bytes());
    return true;
  });
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const u64 = (bytes: Uint8Array) => Buffer.from(bytes).readBigUInt64LE(0);

function protoAnyValue(buf: Uint8Array): AttributeValue {
  let value: AttributeValue = null;
  readMessage(buf, (r, field, wire) => {
    if (field === 1 && wire === 2) value = r.string();
    else if (field === 2 && wire === 0) value = r.varint() !== 0n;
    else if (field === 3 && wire === 0) value = Number(BigInt.asIntN(64, r.varint()));
    else if (field === 4 && wire === 1) value = Buffer.from(r.fixed64()).readDoubleLE(0);
    else if (field === 5 && wire === 2) {
      const values: AttributeValue[] = [];
      readEach(r.bytes(), 1, (v) => values.push(protoAnyValue(v)));
      value = values;
    } else if (field === 6 && wire === 2) value = protoKeyValues(r.bytes(), {});
    else if (field === 7 && wire === 2) value = hex(r.bytes());
    else return false;
    return true;
  });
  return value;
}

/** A `repeated KeyValue` field's one element, added to `into`. */
function protoKeyValue(buf: Uint8Array, into: Record<string, AttributeValue>): void {
  let key = '';
  let value: AttributeValue = null;
  readMessage(buf, (r, field, wire) => {
    if (field === 1 && wire === 2) key = r.string();
    else if (field === 2 && wire === 2) value = protoAnyValue(r.bytes());
    else return false;
    return true;
  });
  into[key] = value;
}

/** A KeyValueList message (field 1: repeated KeyValue). */
function protoKeyValues(
  buf: Uint8Array,
  into: Record<string, AttributeValue>,
): Record<string, AttributeValue> {
  readEach(buf, 1, (kv) => protoKeyValue(kv, into));
  return into;
}

function protoSpan(buf: Uint8Array, resource: Record<string, AttributeValue>, scope: string): CollectedSpan {
  const span: CollectedSpan = {
    traceId: '',
    spanId: '',
    parentSpanId: '',
    traceState: '',
    name: '',
    kind: 0,
    startTimeUnixNano: 0n,
    endTimeUnixNano: 0n,
    attributes: {},
    events: [],
    status: { code: 0, message: '' },
    resource,
    scope,
  };
  readMessage(buf, (r, field, wire) => {
    if (field === 1 && wire === 2) span.traceId = hex(r.bytes());
    else if (field === 2 && wire === 2) span.spanId = hex(r.bytes());
    else if (field === 3 && wire === 2) span.traceState = r.string();
    else if (field === 4 && wire === 2) span.parentSpanId = hex(r.bytes());
    else if (field === 5 && wire === 2) span.name = r.string();
    else if (field === 6 && wire === 0) span.kind = Number(r.varint());
    else if (field === 7 && wire === 1) span.startTimeUnixNano = u64(r.fixed64());
    else if (field === 8 && wire === 1) span.endTimeUnixNano = u64(r.fixed64());
    else if (field === 9 && wire === 2) protoKeyValue(r.bytes(), span.attributes);
    else if (field === 11 && wire === 2) {
      const event = { name: '', attributes: {} as Record<string, AttributeValue> };
      readMessage(r.bytes(), (rr, f, w) => {
        if (f === 2 && w === 2) event.name = rr.string();
        else if (f === 3 && w === 2) protoKeyValue(rr.bytes(), event.attributes);
        else return false;
        return true;
      });
      span.events.push(event);
    } else if (field === 15 && wire === 2) {
      readMessage(r.bytes(), (rr, f, w) => {
        if (f === 2 && w === 2) span.status.message = rr.string();
        else if (f === 3 && w === 0) span.status.code = Number(rr.varint());
        else return false;
        return true;
      });
    } else return false;
    return true;
  });
  return span;
}

/** ExportTraceServiceRequest → ResourceSpans (1) → Resource (1), ScopeSpans (2) → scope (1), Span (2). */
export function decodeProtobufTraces(buf: Uint8Array): CollectedSpan[] {
  const spans: CollectedSpan[] = [];
  readEach(buf, 1, (resourceSpans) => {
    const resource: Record<string, AttributeValue> = {};
    readEach(resourceSpans, 1, (r) => readEach(r, 1, (kv) => protoKeyValue(kv, resource)));
    readEach(resourceSpans, 2, (scopeSpans) => {
      let scope = '';
      readEach(scopeSpans, 1, (s) =>
        readEach(s, 1, (name) => {
          scope = Buffer.from(name).toString('utf8');
        }),
      );
      readEach(scopeSpans, 2, (span) => spans.push(protoSpan(span, resource, scope)));
    });
  });
  return spans;
}

// ---- OTLP/JSON --------------------------------------------------------------------------------------

type Json = Record<string, any>;

function jsonAnyValue(v: Json | undefined): AttributeValue {
  if (!v) return null;
  if ('stringValue' in v) return v.stringValue;
  if ('boolValue' in v) return v.boolValue;
  // int64 is a decimal string in the protobuf JSON mapping; some encoders write a number
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return Number(v.doubleValue);
  if ('arrayValue' in v) return (v.arrayValue.values ?? []).map(jsonAnyValue);
  if ('kvlistValue' in v) return jsonAttributes(v.kvlistValue.values);
  if ('bytesValue' in v) return Buffer.from(v.bytesValue, 'base64').toString('hex');
  return null;
}

function jsonAttributes(list: Json[] | undefined): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const kv of list ?? []) out[kv.key] = jsonAnyValue(kv.value);
  return out;
}

/** OTLP/JSON ids are hex strings (unlike the protobuf JSON mapping's base64). */
export function decodeJsonTraces(body: Json): CollectedSpan[] {
  const spans: CollectedSpan[] = [];
  for (const rs of body.resourceSpans ?? []) {
    const resource = jsonAttributes(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        spans.push({
          traceId: String(s.traceId ?? '').toLowerCase(),
          spanId: String(s.spanId ?? '').toLowerCase(),
          parentSpanId: String(s.parentSpanId ?? '').toLowerCase(),
          traceState: s.traceState ?? '',
          name: s.name ?? '',
          kind: Number(s.kind ?? 0),
          startTimeUnixNano: BigInt(s.startTimeUnixNano ?? 0),
          endTimeUnixNano: BigInt(s.endTimeUnixNano ?? 0),
          attributes: jsonAttributes(s.attributes),
          events: (s.events ?? []).map((e: Json) => ({
            name: e.name ?? '',
            attributes: jsonAttributes(e.attributes),
          })),
          status: { code: Number(s.status?.code ?? 0), message: s.status?.message ?? '' },
          resource,
          scope: ss.scope?.name ?? '',
        });
      }
    }
  }
  return spans;
}

// ---- the receiver -----------------------------------------------------------------------------------

export interface FakeOtlpCollector {
  /** Base URL, for OTEL_EXPORTER_OTLP_ENDPOINT (the SDK appends `/v1/traces`). */
  url: string;
  spans: CollectedSpan[];
  exports: ReceivedExport[];
  /** Resolves once at least `count` spans arrived; rejects after `timeoutMs`. */
  waitForSpans(count: number, timeoutMs?: number): Promise<CollectedSpan[]>;
  clear(): void;
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks);
  return req.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body;
}

export async function startFakeOtlpCollector(): Promise<FakeOtlpCollector> {
  const spans: CollectedSpan[] = [];
  const exports: ReceivedExport[] = [];
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'POST' || req.url !== '/v1/traces') {
      res.writeHead(404).end();
      return;
    }
    const contentType = String(req.headers['content-type'] ?? '')
      .split(';')[0]!
      .trim();
    try {
      const body = await readBody(req);
      let received: CollectedSpan[];
      if (contentType === 'application/json') received = decodeJsonTraces(JSON.parse(body.toString('utf8')));
      else if (contentType === 'application/x-protobuf') received = decodeProtobufTraces(body);
      else {
        res.writeHead(415, { 'content-type': 'text/plain' }).end(`unsupported content-type ${contentType}`);
        return;
      }
      spans.push(...received);
      exports.push({ contentType, headers: req.headers, spanCount: received.length });
      // an empty ExportTraceServiceResponse: `{}` in JSON, zero bytes in protobuf
      res.writeHead(200, { 'content-type': contentType });
      res.end(contentType === 'application/json' ? '{}' : undefined);
    } catch (error) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end(String((error as Error).message));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    exports,
    async waitForSpans(count, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (spans.length < count) {
        if (Date.now() > deadline) {
          throw new Error(`OTLP collector: ${spans.length} spans after ${timeoutMs} ms, expected ${count}`);
        }
        await sleep(10);
      }
      return spans;
    },
    clear() {
      spans.length = 0;
      exports.length = 0;
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
