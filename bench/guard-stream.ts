// What the PII guard costs per streamed chunk (issue 15: "masking on streamed answers adds under 0.1 ms
// per chunk"): the same 2,000-chunk Korean answer, its placeholders cut across chunks, through
// - none:         the chunk as it is (the loop's own cost),
// - pseudonymize: PiiGuard's session restoring placeholders chunk by chunk (the only mode that touches
//                 a streamed answer: `mask` and `detect` leave it alone),
// and, per request, what `begin` costs to mask a 4,000-character prompt. In-process, no I/O.
//
// Run: node --import tsx bench/guard-stream.ts [--rounds=30]
import { parseArgs } from 'node:util';
import type { GuardSession } from '../src/calls/guard.ts';
import type { ObservedCall } from '../src/calls/observer.ts';
import type { DataPolicy } from '../src/guardrails/data-policies.ts';
import { PiiGuard } from '../src/guardrails/pii-guard.ts';
import { combinePolicies } from '../src/guardrails/policy-snapshot.ts';
import { createLogger } from '../src/observability/logger.ts';
import type { JsonObject } from '../src/providers/adapter.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string' } } });
const ROUNDS = Number(values.rounds ?? 30);
const CHUNKS = 2_000;

const policy: DataPolicy = {
  id: 'dpol_bench',
  scope: 'organization',
  scopeId: 'org_bench',
  piiMode: 'pseudonymize',
  piiTypes: null,
  residency: 'any',
  certifiedOnly: false,
  createdAt: '',
  updatedAt: '',
};
const effective = combinePolicies([policy]);
const guard = new PiiGuard({ effective: () => effective }, createLogger('silent', { write() {} }));

const values4k = [
  '900101-1234568',
  '010-1234-5678',
  'kim.minsu@example.co.kr',
  '02-345-6789',
  '851212-2345678',
];
function prompt4k(): string {
  const sentences = [
    '안녕하세요, 지난주에 접수한 민원의 처리 상황을 문의드립니다.',
    '계약서 초안은 2026-03-15에 검토를 마쳤고 금액은 12,500,000원입니다.',
    '버전 2.10.4 배포 이후 오류가 줄었습니다.',
  ];
  let text = '';
  let i = 0;
  while (text.length < 4_000) {
    text += `${sentences[i % sentences.length]} `;
    if (i % 4 === 0) text += `담당자 연락처는 ${values4k[(i / 4) % values4k.length]}입니다. `;
    i++;
  }
  return text.slice(0, 4_000);
}

function call(content: string): ObservedCall {
  return {
    requestId: 'req_bench',
    operation: 'chat',
    caller: { organizationId: 'org_bench', organizationClass: 'sme' },
    product: { id: 'prd_bench', model: 'bench' },
    body: { model: 'bench', messages: [{ role: 'user', content }] },
  } as unknown as ObservedCall;
}

/** The answer's pieces: the model repeating the placeholders among ordinary text, 2–6 characters a chunk. */
function answerPieces(): string[] {
  const words =
    '네 확인했습니다 [주민등록번호_1] 고객님의 연락처 [전화번호_1] 와 메일 [이메일_1] 로 안내드립니다'.split(
      ' ',
    );
  const text = Array.from({ length: 400 }, (_, i) => words[i % words.length]).join(' ');
  const pieces: string[] = [];
  let at = 0;
  for (let i = 0; pieces.length < CHUNKS; i++) {
    const size = 2 + (i % 5);
    pieces.push(text.slice(at % text.length, (at % text.length) + size));
    at += size;
  }
  return pieces;
}

const chunkOf = (content: string): JsonObject => ({
  id: 'c',
  object: 'chat.completion.chunk',
  created: 1,
  model: 'bench',
  choices: [{ index: 0, delta: { content }, finish_reason: null }],
});

const prompt = prompt4k();
const pieces = answerPieces();

function runStream(session: GuardSession | null): number {
  const chunks = pieces.map(chunkOf);
  const start = process.hrtime.bigint();
  let sink = 0;
  for (const c of chunks) {
    const out = session === null ? c : session.chunk(c);
    if (out !== null) sink += 1;
  }
  const ns = Number(process.hrtime.bigint() - start);
  if (sink < 0) throw new Error('unreachable');
  return ns / CHUNKS;
}

function begin(): { session: GuardSession; ns: number } {
  const start = process.hrtime.bigint();
  const session = guard.begin(call(prompt)) as GuardSession;
  return { session, ns: Number(process.hrtime.bigint() - start) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p99 = (xs: number[]) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))]!;

// warm up
for (let i = 0; i < 5; i++) {
  runStream(null);
  runStream(begin().session);
}
const plain: number[] = [];
const guarded: number[] = [];
const begins: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  plain.push(runStream(null));
  const { session, ns } = begin();
  begins.push(ns);
  guarded.push(runStream(session));
}
const us = (ns: number) => (ns / 1000).toFixed(3);
process.stdout.write(
  `${JSON.stringify(
    {
      rounds: ROUNDS,
      chunksPerRound: CHUNKS,
      perChunkMicroseconds: {
        none: { median: us(median(plain)), p99: us(p99(plain)) },
        pseudonymize: { median: us(median(guarded)), p99: us(p99(guarded)) },
        added: us(median(guarded) - median(plain)),
      },
      begin4kPromptMicroseconds: { median: us(median(begins)), p99: us(p99(begins)) },
      node: process.version,
    },
    null,
    2,
  )}\n`,
);
