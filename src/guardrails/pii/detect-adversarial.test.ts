import assert from 'node:assert/strict';
import { test } from 'node:test';
import { detectPii, maskPii } from './detect.ts';
import { PII_TYPES, type PiiFinding } from './types.ts';

/** Mulberry32: a small seeded PRNG, so a failing input can be reproduced from the seed. */
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

const PIECES = [
  '0',
  '1',
  '2',
  '5',
  '8',
  '9',
  '82',
  '010',
  '1234',
  '5678',
  '900101',
  '1234568',
  '４',
  '０',
  '-',
  '－',
  '–',
  ' ',
  ' ',
  '.',
  ',',
  '+',
  '@',
  '@',
  'a',
  'Z',
  'M',
  'S',
  '_',
  '/',
  '#',
  'example.com',
  'hong',
  '가',
  '는',
  '주민',
  '계좌',
  '법인',
  '건보',
  '면허',
  '서울',
  '주문번호',
  '송금',
  'Acct',
  '원',
  '😀',
  '\n',
];

function randomText(next: () => number, pieces: number): string {
  let text = '';
  for (let k = 0; k < pieces; k++) text += PIECES[Math.floor(next() * PIECES.length)];
  return text;
}

function assertWellFormed(text: string, findings: PiiFinding[]): void {
  let previousEnd = 0;
  for (const finding of findings) {
    assert.ok(PII_TYPES.includes(finding.type), `unknown type in ${JSON.stringify(text)}`);
    assert.ok(Number.isInteger(finding.start) && Number.isInteger(finding.end));
    assert.ok(finding.start >= previousEnd, `overlap or disorder in ${JSON.stringify(text)}`);
    assert.ok(
      finding.start < finding.end && finding.end <= text.length,
      `span outside ${JSON.stringify(text)}`,
    );
    previousEnd = finding.end;
  }
}

test('random mixes: spans inside the text, sorted, never overlapping; the same after a neutral prefix', () => {
  const next = prng(20261130);
  const prefix = '가나다 ';
  for (let k = 0; k < 3000; k++) {
    const text = randomText(next, 1 + Math.floor(next() * 60));
    const findings = detectPii(text);
    assertWellFormed(text, findings);
    // the scan depends only on what is near a value, so a prefix ending in a space shifts every offset
    const shifted = detectPii(prefix + text).map((f) => ({
      ...f,
      start: f.start - prefix.length,
      end: f.end - prefix.length,
    }));
    assert.deepEqual(shifted, findings, JSON.stringify(text));
    assert.deepEqual(detectPii(text, new Set(PII_TYPES)), findings);
    maskPii(text, findings);
  }
});

/**
 * The process's CPU time in ms: what catastrophic backtracking would cost shows in it, and other work
 * on a loaded machine does not (a wall-clock bound failed in CI with two busy loops beside it: 244 ms).
 */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

test('adversarial inputs finish quickly and never throw', () => {
  const next = prng(7);
  const inputs: Array<[string, string]> = [
    ['200,000 digits', '1'.repeat(200_000)],
    ['200,000 full-width digits', '１'.repeat(200_000)],
    ['100,000 hyphens alternating with digits', '1-'.repeat(100_000)],
    ['digits and full-width hyphens', '-１'.repeat(100_000)],
    ['digits and spaces', '1 '.repeat(100_000)],
    ['spaced dashes', '1 - '.repeat(50_000)],
    ['dots', '1.'.repeat(100_000)],
    ['50,000 @', '@'.repeat(50_000)],
    ['a 100,000-char local part', `${'a'.repeat(100_000)}@example.com`],
    ['a 100,000-char domain', `a@${'b.'.repeat(50_000)}com`],
    ['many long local parts', `${'a'.repeat(63)}@`.repeat(3_000)],
    ['a@ repeated', 'a@'.repeat(100_000)],
    ['passport letters and digits', 'M1'.repeat(100_000)],
    ['passport-like tokens', 'M1234567 '.repeat(20_000)],
    ['plus signs', '+82'.repeat(60_000)],
    ['spaced +82', '+82 '.repeat(50_000)],
    ['glued identifiers', '9001011234568'.repeat(15_000)],
    ['context and numbers needing it', `계좌 ${'110-123-456789 '.repeat(12_000)}`],
    ['bare numbers needing context', '1234567890 '.repeat(18_000)],
    ['accounts with the word after them', '110-123-456789로 송금 '.repeat(10_000)],
    ['numbers after record labels', '주문번호 900101-1234567 접수번호 1234567890 '.repeat(5_000)],
    ['English context words', 'account acct bank corp 1234567890 '.repeat(6_000)],
    ['random mix', randomText(next, 100_000)],
  ];
  for (const [name, text] of inputs) {
    const started = cpuMs();
    const findings = detectPii(text);
    const elapsed = cpuMs() - started;
    assertWellFormed(text, findings);
    assert.ok(elapsed < 200, `${name}: ${elapsed.toFixed(1)} ms of CPU`);
  }
});

test('a long list of values is found in full, in linear time', () => {
  const text = '01012345678 '.repeat(20_000);
  const started = cpuMs();
  const findings = detectPii(text);
  assert.ok(cpuMs() - started < 200);
  assert.equal(findings.length, 20_000);
  assert.deepEqual(findings[19_999], { type: 'phone', start: 19_999 * 12, end: 19_999 * 12 + 11 });
  const masked = maskPii(text, findings);
  assert.equal(masked, '[전화번호] '.repeat(20_000));
});
