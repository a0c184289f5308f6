// Korean PII detection on 4,000-character prompts (issue 15's target: under 200 µs per prompt).
// Builds realistic prompts — running Korean text with PII mixed among dates, amounts and versions, a
// PII-free one with as many numbers, and one without a digit — then times detectPii and maskPii
// per prompt after a warm-up.
//
// The detector is timed as the hub runs it: bundled by esbuild as `kaihub start` bundles src/
// (decision 0013); --loader=tsx times the sources through tsx's loader instead, as the tests run them.
//
// Run: node --import tsx bench/pii-detect.ts [--iterations=20000] [--warmup=3000] [--loader=tsx]
import { parseArgs } from 'node:util';
import * as esbuild from 'esbuild';
import type * as Detect from '../src/guardrails/pii/detect.ts';

const { values } = parseArgs({
  options: { iterations: { type: 'string' }, warmup: { type: 'string' }, loader: { type: 'string' } },
});
const built = await esbuild.build({
  entryPoints: [new URL('../src/guardrails/pii/detect.ts', import.meta.url).pathname],
  bundle: true,
  write: false,
  platform: 'node',
  format: 'esm',
  target: `node${process.versions.node}`,
  tsconfigRaw: { compilerOptions: { verbatimModuleSyntax: true, useDefineForClassFields: true } },
});
const { detectPii, maskPii }: typeof Detect =
  values.loader === 'tsx'
    ? await import('../src/guardrails/pii/detect.ts')
    : await import(
        `data:text/javascript;base64,${Buffer.from(built.outputFiles[0]!.text).toString('base64')}`
      );
const ITERATIONS = Number(values.iterations ?? 20_000);
const WARMUP = Number(values.warmup ?? 3_000);
const PROMPT_LENGTH = 4_000;

/** Mulberry32, so every run times the same prompts. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NEUTRAL = [
  '다음 회의록을 읽고 핵심 결정 사항과 후속 조치를 세 줄로 요약해 주세요.',
  '회의는 2026-11-30 오후 2시에 본관 3층 대회의실에서 열렸고, 참석자는 모두 12명이었습니다.',
  '올해 예산은 1,250,000,000원이며 그중 37.5%를 인공지능 바우처 사업에 배정했습니다.',
  '서비스는 v2.14.3으로 배포되었고 Node 20.20.2와 PostgreSQL 16.4 위에서 동작합니다.',
  '지난 분기 매출은 전년 대비 12% 증가한 3,480,000,000원으로 집계되었습니다.',
  '납품 기한은 2026.12.15이며, 검수는 20261220까지 마쳐야 합니다.',
  '프로젝트 번호 PRJ-2026-0042와 주문번호 ORD-20261130-8891을 참고해 주세요.',
  '응답은 존댓말로, 표는 마크다운으로, 숫자는 천 단위 구분 기호를 넣어 작성해 주세요.',
  '초거대 AI 모델의 경량화는 추론 비용을 줄이고 더 많은 기관이 활용할 수 있게 합니다.',
  '우편번호 06236의 사무실로 오후 6시 전에 서류를 보내면 다음 날 처리됩니다.',
];
const WITH_PII = [
  '신청인 홍길동(주민등록번호 900101-1234568)의 연락처는 010-1234-5678입니다.',
  '담당자 메일은 gildong.hong@example.co.kr이고 사무실 번호는 02-123-4567입니다.',
  '환급금은 신한은행 110-123-456789(예금주 홍길동)로 입금해 주세요.',
  '법인 카드 4111-1111-1111-1111로 결제했으며 사업자등록번호는 124-81-00998입니다.',
  '여권번호 M123A4567와 운전면허번호 11-12-345678-90을 확인했습니다.',
  '외국인 직원의 외국인등록번호는 900101-5123450이고 건강보험증 번호는 1-2345678901입니다.',
  '해외 연락처는 +82 10-2345-6789이며 대표번호 1588-1234로도 문의할 수 있습니다.',
];
const NO_DIGITS = [
  '다음 글을 읽고 핵심 내용을 요약해 주세요.',
  '초거대 인공지능은 많은 기관의 업무 방식을 바꾸고 있습니다.',
  '공급기업은 모델의 크기와 용도에 따라 여러 상품을 제공합니다.',
  '수요기관은 자신에게 맞는 상품을 골라 하나의 관문으로 호출합니다.',
  '평가는 공개적으로 진행되며 가장 약한 팀이 매 라운드 탈락합니다.',
];

function prompt(
  seed: number,
  sentences: readonly string[],
  pii: readonly string[],
  piiCount: number,
): string {
  const next = prng(seed);
  const parts: string[] = [];
  let length = 0;
  let placed = 0;
  while (length < PROMPT_LENGTH) {
    const usePii = placed < piiCount && next() < 0.35;
    const sentence = usePii ? pii[placed++ % pii.length]! : sentences[Math.floor(next() * sentences.length)]!;
    parts.push(sentence);
    length += sentence.length + 1;
  }
  // trim on a sentence boundary, then pad with PII-free text to exactly 4,000 characters
  let text = parts.join(' ');
  while (text.length > PROMPT_LENGTH) text = text.slice(0, text.lastIndexOf(' '));
  text = `${text} ${'가'.repeat(PROMPT_LENGTH)}`.slice(0, PROMPT_LENGTH);
  // a prompt reaches the guard from JSON.parse, as a flat string; a slice of a concatenation is not
  // one, and reading it costs V8 an indirection per character
  return JSON.parse(JSON.stringify(text)) as string;
}

/** Runs of digits: what the cost of detection grows with. */
function digitRuns(text: string): number {
  let runs = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (
      c >= 0x30 &&
      c <= 0x39 &&
      !(i > 0 && text.charCodeAt(i - 1) >= 0x30 && text.charCodeAt(i - 1) <= 0x39)
    )
      runs++;
  }
  return runs;
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function time(fn: () => unknown): { mean: number; p50: number; p99: number } {
  for (let k = 0; k < WARMUP; k++) fn();
  const samples = new Float64Array(ITERATIONS);
  for (let k = 0; k < ITERATIONS; k++) {
    const start = process.hrtime.bigint();
    fn();
    samples[k] = Number(process.hrtime.bigint() - start) / 1000;
  }
  samples.sort();
  let sum = 0;
  for (const s of samples) sum += s;
  return { mean: sum / ITERATIONS, p50: percentile(samples, 50), p99: percentile(samples, 99) };
}

// [name, prompt, findings it must have]
const prompts: Array<[string, string, number]> = [
  ['9 PII values among dates, amounts, versions', prompt(1, NEUTRAL, WITH_PII, 5), 9],
  ['13 PII values, all 11 types', prompt(1, NEUTRAL, WITH_PII, 7), 13],
  ['PII-free, the same dates, amounts, versions', prompt(1, NEUTRAL, [], 0), 0],
  ['PII-free, no digit at all', prompt(2, NO_DIGITS, [], 0), 0],
];

const fmt = (v: number) => v.toFixed(1).padStart(7);
process.stdout.write(
  `node ${process.version}, ${values.loader === 'tsx' ? 'sources through tsx' : 'esbuild bundle'}, ` +
    `${ITERATIONS} iterations after ${WARMUP} warm-up, ${PROMPT_LENGTH}-character prompts\n\n`,
);
process.stdout.write(
  '| prompt | digit runs | findings | operation | mean (µs) | p50 (µs) | p99 (µs) |\n| --- | ---: | ---: | --- | ---: | ---: | ---: |\n',
);
for (const [name, text, expected] of prompts) {
  const findings = detectPii(text);
  if (text.length !== PROMPT_LENGTH || findings.length !== expected) {
    throw new Error(`${name}: ${text.length} characters, ${findings.length} findings`);
  }
  const detect = time(() => detectPii(text));
  const mask = time(() => maskPii(text, findings));
  const both = time(() => maskPii(text, detectPii(text)));
  for (const [operation, r] of [
    ['detectPii', detect],
    ['maskPii', mask],
    ['both', both],
  ] as const) {
    process.stdout.write(
      `| ${name} | ${digitRuns(text)} | ${findings.length} | ${operation} | ${fmt(r.mean)} | ${fmt(r.p50)} | ${fmt(r.p99)} |\n`,
    );
  }
}
process.stdout.write(
  `\nfindings in the second prompt: ${detectPii(prompts[1]![1])
    .map((f) => f.type)
    .join(', ')}\n`,
);
