import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Caller } from '../accounts/key-cache.ts';
import { type GuardSession, isRefusal } from '../calls/guard.ts';
import type { ObservedCall } from '../calls/observer.ts';
import type { RoutableProduct } from '../catalog/catalog-snapshot.ts';
import { createLogger } from '../observability/logger.ts';
import type { JsonObject } from '../providers/adapter.ts';
import { Placement } from '../providers/features.ts';
import type { DataPolicy } from './data-policies.ts';
import { PiiGuard } from './pii-guard.ts';
import { combinePolicies } from './policy-snapshot.ts';

const RRN = '900101-1234568';
const PHONE = '010-1234-5678';

function policy(fields: Partial<DataPolicy>): DataPolicy {
  return {
    id: `dpol_${Math.random()}`,
    scope: 'organization',
    scopeId: 'org_1',
    piiMode: 'off',
    piiTypes: null,
    residency: 'any',
    certifiedOnly: false,
    createdAt: '',
    updatedAt: '',
    ...fields,
  };
}

function guardWith(...policies: Partial<DataPolicy>[]): PiiGuard {
  const effective = combinePolicies(policies.map(policy));
  const silent = createLogger('silent', { write() {} });
  return new PiiGuard({ effective: () => effective }, silent);
}

const caller = { organizationId: 'org_1', organizationClass: 'sme' } as Caller;
const product = { id: 'prd_1', model: 'm' } as RoutableProduct;

function call(body: JsonObject, operation: 'chat' | 'embeddings' = 'chat'): ObservedCall {
  return { requestId: 'req_1', caller, product, body, operation } as unknown as ObservedCall;
}

function session(guard: PiiGuard, body: JsonObject): GuardSession {
  const begun = guard.begin(call(body));
  assert.ok(begun !== null && !(begun instanceof Promise) && !isRefusal(begun), 'a session');
  return begun as GuardSession;
}

const chunk = (content: string, finish: string | null = null): JsonObject => ({
  id: 'c1',
  object: 'chat.completion.chunk',
  created: 1,
  model: 'm',
  choices: [{ index: 0, delta: { content }, finish_reason: finish }],
});

type Choice = { delta: { content?: string }; message: Record<string, unknown> };
const firstChoice = (c: JsonObject | null): Choice | undefined => (c?.choices as Choice[] | undefined)?.[0];
const contentOf = (c: JsonObject | null): string => firstChoice(c)?.delta.content ?? '';
type ToolMessage = { content: string; tool_calls: { function: { arguments: string } }[] };

test('off, or nothing found: no session, the request untouched', () => {
  const body = { model: 'm', messages: [{ role: 'user', content: `번호 ${RRN}` }] };
  assert.equal(guardWith().begin(call(body)), null);
  assert.equal(
    guardWith({ piiMode: 'mask' }).begin(call({ model: 'm', messages: [{ role: 'user', content: '안녕' }] })),
    null,
  );
  assert.equal(guardWith({ piiMode: 'detect' }).begin(call(body)), null, 'detect changes nothing');
});

test('mask and pseudonymize copy what they change and never touch the client’s objects', () => {
  const message = {
    role: 'user',
    content: [
      { type: 'text', text: `번호 ${RRN}` },
      { type: 'image_url', image_url: { url: 'https://x/y.png' } },
    ],
  };
  const body: JsonObject = { model: 'm', messages: [{ role: 'system', content: '규칙' }, message] };
  const before = JSON.stringify(body);
  const s = session(guardWith({ piiMode: 'mask' }), body);
  assert.equal(JSON.stringify(body), before);
  const sent = s.request.messages as { content: unknown }[];
  assert.equal(sent[0], (body.messages as unknown[])[0], 'an unchanged message is the same object');
  assert.deepEqual(sent[1]!.content, [
    { type: 'text', text: '번호 [주민등록번호]' },
    { type: 'image_url', image_url: { url: 'https://x/y.png' } },
  ]);
});

test('tool-call arguments are guarded too, and restored in the answer', () => {
  const body: JsonObject = {
    model: 'm',
    messages: [
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 't1', type: 'function', function: { name: 'lookup', arguments: `{"phone":"${PHONE}"}` } },
        ],
      },
    ],
  };
  const s = session(guardWith({ piiMode: 'pseudonymize' }), body);
  const args = (s.request.messages as ToolMessage[])[0]!.tool_calls[0]!.function.arguments;
  assert.equal(args, '{"phone":"[전화번호_1]"}');
  const answer = s.completed({
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: '[전화번호_1]로 연락합니다',
          tool_calls: [
            { id: 't2', type: 'function', function: { name: 'call', arguments: '{"to":"[전화번호_1]"}' } },
          ],
        },
      },
    ],
  });
  const message = firstChoice(answer)!.message as ToolMessage;
  assert.equal(message.content, `${PHONE}로 연락합니다`);
  assert.equal(message.tool_calls[0]!.function.arguments, `{"to":"${PHONE}"}`);
});

test('a streamed answer gets the values back even when a placeholder is cut across chunks', () => {
  const s = session(guardWith({ piiMode: 'pseudonymize' }), {
    model: 'm',
    messages: [{ role: 'user', content: `${RRN}, ${PHONE}` }],
  });
  const reply = '네, [주민등록번호_1]님의 번호 [전화번호_1]을 확인했습니다.';
  for (let cut = 0; cut <= reply.length; cut++) {
    const s2 = session(guardWith({ piiMode: 'pseudonymize' }), {
      model: 'm',
      messages: [{ role: 'user', content: `${RRN}, ${PHONE}` }],
    });
    let text = '';
    for (const part of [reply.slice(0, cut), reply.slice(cut)]) {
      const out = s2.chunk(chunk(part));
      text += contentOf(out);
    }
    const last = s2.chunk(chunk('', 'stop'));
    text += contentOf(last);
    assert.equal(text, `네, ${RRN}님의 번호 ${PHONE}을 확인했습니다.`, `cut at ${cut}`);
    assert.equal(s2.flush(), null, 'nothing left once the finish reason came');
  }
  // an answer that ends without a finish reason: the held text comes out in flush()
  s.chunk(chunk('끝: [주민등록'));
  const rest = s.flush();
  assert.equal(contentOf(rest), '[주민등록');
  s.end();
});

test('block refuses naming types only; residency becomes placement bits', () => {
  const guard = guardWith(
    { piiMode: 'block', piiTypes: ['rrn'] },
    { piiMode: 'mask', residency: 'domestic', certifiedOnly: true },
  );
  const refused = guard.begin(call({ model: 'm', messages: [{ role: 'user', content: `${RRN} ${PHONE}` }] }));
  assert.ok(refused !== null && !(refused instanceof Promise) && isRefusal(refused));
  assert.equal(refused.refused.code, 'pii_blocked');
  assert.ok(!refused.refused.message.includes(RRN));
  assert.equal(guard.placement(caller, product), Placement.domestic | Placement.certified);
  assert.equal(guardWith().placement(caller, product), 0);
});

test('redact masks every type for logs, whatever the policies say', () => {
  assert.equal(
    guardWith().redact(`{"content":"${RRN} / ${PHONE}"}`),
    '{"content":"[주민등록번호] / [전화번호]"}',
  );
});
