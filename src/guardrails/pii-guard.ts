import type { Caller } from '../accounts/key-cache.ts';
import type { Guard, GuardRefusal, GuardSession } from '../calls/guard.ts';
import type { ObservedCall } from '../calls/observer.ts';
import type { RoutableProduct } from '../catalog/catalog-snapshot.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { JsonObject } from '../providers/adapter.ts';
import type { PiiMode } from './data-policies.ts';
import { detectPii, maskPii } from './pii/detect.ts';
import { PII_LABELS, PII_TYPES, type PiiFinding, type PiiType } from './pii/types.ts';
import { piiRefused } from './pii-refusal.ts';
import type { EffectivePolicy } from './policy-snapshot.ts';
import { Pseudonyms, StreamRestorer } from './pseudonyms.ts';
import { rewriteRequestTexts } from './request-texts.ts';

/** Where the guard reads the policies in force (policy-snapshot.ts's DataPolicySnapshot). */
export interface PolicySource {
  effective(organizationId: string, organizationClass: string, productId: string): EffectivePolicy;
}

const TYPE_INDEX = new Map<PiiType, number>(PII_TYPES.map((t, i) => [t, i]));

/** What one pass over a request found and did, by type (counts only: values are never kept here). */
interface Pass {
  found: Map<PiiType, number>;
  blocked: Set<PiiType>;
  pseudonyms: Pseudonyms | null;
}

/**
 * The Korean PII guard (docs/guardrails.md), in the call layer's guard seam. Per call it reads the data
 * policies in force for the organisation and the product (policy-snapshot.ts, in memory) and then, per
 * type found: `detect` logs the types, `mask` replaces values before the upstream sees them,
 * `pseudonymize` replaces them with stable placeholders and puts the values back into the answer
 * (streamed answers too, chunk by chunk), `block` refuses the call naming the types. A call whose
 * policy is `off` costs one map lookup.
 */
export class PiiGuard implements Guard {
  constructor(
    private readonly policies: PolicySource,
    private readonly logger: Logger,
    private readonly metrics?: Pick<Metrics, 'piiFindings'>,
  ) {}

  placement(caller: Caller, product: RoutableProduct): number {
    return this.policies.effective(caller.organizationId, caller.organizationClass, product.id).placement;
  }

  begin(call: ObservedCall): GuardSession | GuardRefusal | null {
    const product = call.product;
    if (product === null) return null;
    const policy = this.policies.effective(
      call.caller.organizationId,
      call.caller.organizationClass,
      product.id,
    );
    if (policy.strictest === 'off') return null;
    const pass: Pass = { found: new Map(), blocked: new Set(), pseudonyms: null };
    const request = rewriteRequestTexts(call.body, call.operation, (text) => guardText(text, policy, pass));
    if (pass.found.size === 0) return null;
    const action =
      pass.blocked.size > 0
        ? 'block'
        : request === null
          ? 'detect'
          : pass.pseudonyms !== null
            ? 'pseudonymize'
            : 'mask';
    this.logger.info(
      {
        requestId: call.requestId,
        organizationId: call.caller.organizationId,
        pii: Object.fromEntries(pass.found),
        action,
      },
      'personal data found',
    );
    if (this.metrics !== undefined)
      for (const [type, n] of pass.found) this.metrics.piiFindings.labels(type, action).inc(n);
    if (pass.blocked.size > 0) return { refused: piiRefused([...pass.blocked]) };
    if (request === null) return null;
    return pass.pseudonyms !== null && pass.pseudonyms.size > 0
      ? new PseudonymSession(request, pass.pseudonyms)
      : new MaskedSession(request);
  }

  /** For logs and traces: every type masked, whatever the policies say. */
  redact(text: string): string {
    const findings = detectPii(text);
    return findings.length === 0 ? text : maskPii(text, findings);
  }
}

/** One text of the request under `policy`: the text the upstream gets, or null when it is unchanged. */
function guardText(text: string, policy: EffectivePolicy, pass: Pass): string | null {
  const findings = detectPii(text, policy.active);
  if (findings.length === 0) return null;
  let out = '';
  let at = 0;
  for (const f of findings) {
    pass.found.set(f.type, (pass.found.get(f.type) ?? 0) + 1);
    const mode: PiiMode = policy.modes[TYPE_INDEX.get(f.type)!]!;
    const replacement = replacementFor(f, mode, text, pass);
    if (replacement === null) continue;
    out += text.slice(at, f.start) + replacement;
    at = f.end;
  }
  return at === 0 ? null : out + text.slice(at);
}

function replacementFor(f: PiiFinding, mode: PiiMode, text: string, pass: Pass): string | null {
  switch (mode) {
    case 'mask':
      return `[${PII_LABELS[f.type]}]`;
    case 'pseudonymize':
      pass.pseudonyms ??= new Pseudonyms();
      return pass.pseudonyms.placeholder(f.type, text.slice(f.start, f.end));
    case 'block':
      pass.blocked.add(f.type);
      return null;
    default:
      return null;
  }
}

/** Masked values stay masked: the answer passes as it is. */
class MaskedSession implements GuardSession {
  constructor(readonly request: JsonObject) {}
  completed(body: JsonObject): JsonObject {
    return body;
  }
  chunk(chunk: JsonObject): JsonObject {
    return chunk;
  }
  flush(): null {
    return null;
  }
  end(): void {}
}

type ChoiceLike = {
  index?: unknown;
  finish_reason?: unknown;
  message?: MessageLike;
  delta?: MessageLike;
};
type MessageLike = {
  content?: unknown;
  tool_calls?: { index?: unknown; function?: { arguments?: unknown } }[];
};

/** Placeholders in the answer become the client's values again, in whole answers and in streams. */
class PseudonymSession implements GuardSession {
  /** One per streamed text: a choice's content (`c<index>`) or a tool call's arguments (`t<choice>.<tool>`). */
  private readonly restorers = new Map<string, StreamRestorer>();
  private last: JsonObject | null = null;

  constructor(
    readonly request: JsonObject,
    private readonly pseudonyms: Pseudonyms,
  ) {}

  completed(body: JsonObject): JsonObject {
    const choices = body.choices;
    if (!Array.isArray(choices)) return body;
    for (const choice of choices as ChoiceLike[]) {
      const message = choice?.message;
      if (!message) continue;
      if (typeof message.content === 'string') message.content = this.pseudonyms.restore(message.content);
      for (const call of Array.isArray(message.tool_calls) ? message.tool_calls : []) {
        const fn = call?.function;
        if (fn && typeof fn.arguments === 'string') fn.arguments = this.pseudonyms.restore(fn.arguments);
      }
    }
    return body;
  }

  chunk(chunk: JsonObject): JsonObject {
    this.last = chunk;
    const choices = chunk.choices;
    if (!Array.isArray(choices)) return chunk;
    for (const choice of choices as ChoiceLike[]) {
      const delta = choice?.delta;
      if (!delta) continue;
      const ending = choice.finish_reason !== null && choice.finish_reason !== undefined;
      const index = Number(choice.index ?? 0);
      if (typeof delta.content === 'string' || (ending && this.restorers.has(`c${index}`))) {
        const restorer = this.restorer(`c${index}`);
        let text = restorer.push(typeof delta.content === 'string' ? delta.content : '');
        if (ending) text += restorer.end();
        delta.content = text;
      }
      for (const call of Array.isArray(delta.tool_calls) ? delta.tool_calls : []) {
        const fn = call?.function;
        if (!fn || typeof fn.arguments !== 'string') continue;
        const restorer = this.restorer(`t${index}.${Number(call.index ?? 0)}`);
        fn.arguments = restorer.push(fn.arguments) + (ending ? restorer.end() : '');
      }
    }
    return chunk;
  }

  /** Text still held when the answer ended without a finish reason: sent as one last chunk. */
  flush(): JsonObject | null {
    const choices: JsonObject[] = [];
    for (const [key, restorer] of this.restorers) {
      if (!restorer.holding || !key.startsWith('c')) continue;
      choices.push({ index: Number(key.slice(1)), delta: { content: restorer.end() }, finish_reason: null });
    }
    if (choices.length === 0) return null;
    const last = this.last ?? {};
    return {
      id: last.id ?? null,
      object: 'chat.completion.chunk',
      created: last.created ?? Math.floor(Date.now() / 1000),
      model: last.model ?? null,
      choices,
    };
  }

  end(): void {
    this.restorers.clear();
  }

  private restorer(key: string): StreamRestorer {
    let r = this.restorers.get(key);
    if (r === undefined) {
      r = new StreamRestorer(this.pseudonyms);
      this.restorers.set(key, r);
    }
    return r;
  }
}
