// The hand-over of a traced call's record to the exporter's thread (call-tracer.ts makes the record,
// span-export-worker.mjs rebuilds its spans with call-records.mjs). Apart from call-records.mjs, which
// imports OpenTelemetry's core, so that the event loop's side (span-export.ts) does not: the hub's start
// bundle hoists a bundled module's package imports to its top, and loaded core with no tracing on.
// Types in call-encoding.d.mts.

// ---- the hand-over encoding ------------------------------------------------------------------------
// encodeCall and decodeCall list the same fields in the same order; a test sends every field through.

// Times go as integers, which JSON writes faster than fractions (and shorter): a child's start in
// milliseconds after the call's, lengths in nanoseconds (the SDK rounds them to nanoseconds too).
function encodeChild(c, startMs) {
  const at = c.at - startMs;
  const ns = Math.round(c.ms * 1e6);
  return typeof c.stage === 'string'
    ? [c.stage, at, ns, c.error]
    : [
        c.spanId,
        c.upstream,
        at,
        ns,
        c.ttft,
        c.httpStatus,
        c.errorType,
        c.message,
        c.inputTokens,
        c.outputTokens,
      ];
}

function decodeChild(t, startMs) {
  if (t.length === 4) return { stage: t[0], at: startMs + t[1], ms: t[2] / 1e6, error: t[3] };
  return {
    spanId: t[0],
    upstream: t[1],
    at: startMs + t[2],
    ms: t[3] / 1e6,
    ttft: t[4],
    httpStatus: t[5],
    errorType: t[6],
    message: t[7],
    inputTokens: t[8],
    outputTokens: t[9],
  };
}

export function encodeCall(r) {
  const children = new Array(r.children.length);
  for (let i = 0; i < children.length; i++) children[i] = encodeChild(r.children[i], r.startMs);
  return [
    r.traceId,
    r.parentSpanId,
    r.traceState,
    r.operation,
    r.model,
    r.samplerAttributes,
    r.requestId,
    r.organizationId,
    r.apiKeyId,
    r.stream,
    r.request,
    r.inputMessages,
    r.messagesLeftOut,
    r.startMs,
    r.endMs - r.startMs,
    r.ttft,
    r.httpStatus,
    r.productId,
    r.servedProductId,
    r.servedModel,
    r.servedUpstream,
    r.responseId,
    r.finishReasons,
    r.inputTokens,
    r.outputTokens,
    r.usageSource,
    r.usageStatus,
    r.costMicroKrw,
    r.errorType,
    children,
  ];
}

export function decodeCall(t) {
  const startMs = t[13];
  return {
    traceId: t[0],
    parentSpanId: t[1],
    traceState: t[2],
    operation: t[3],
    model: t[4],
    samplerAttributes: t[5],
    requestId: t[6],
    organizationId: t[7],
    apiKeyId: t[8],
    stream: t[9],
    request: t[10],
    inputMessages: t[11],
    messagesLeftOut: t[12],
    startMs,
    endMs: startMs + t[14],
    ttft: t[15],
    httpStatus: t[16],
    productId: t[17],
    servedProductId: t[18],
    servedModel: t[19],
    servedUpstream: t[20],
    responseId: t[21],
    finishReasons: t[22],
    inputTokens: t[23],
    outputTokens: t[24],
    usageSource: t[25],
    usageStatus: t[26],
    costMicroKrw: t[27],
    errorType: t[28],
    children: t[29].map((c) => decodeChild(c, startMs)),
  };
}
