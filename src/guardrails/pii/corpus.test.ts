// The Korean PII corpus (test/fixtures/pii-corpus/): its integrity, and the detector's precision and
// recall on it, per type, with exact matching (type, start and end all equal). docs/guardrails-
// evaluation.md reports the same figures next to Presidio's.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { evaluate, loadCorpus, loadDetector } from '../../../test/fixtures/pii-corpus/evaluate.ts';
import {
  CORPUS_PATH,
  corpusJsonl,
  generateCorpus,
  ruleViolation,
} from '../../../test/fixtures/pii-corpus/generate.ts';
import { matchesShape } from '../../../test/fixtures/pii-corpus/shapes.ts';
import { PII_TYPES } from './types.ts';

/**
 * Each type's precision and recall must reach this, on every type. The corpus holds 150–430 values a
 * type, so 0.98 allows three to eight misses (or false alarms) a type: enough for the odd case the
 * corpus and the detector read differently, not for a form or a context the detector gets wrong.
 */
const MIN_PRECISION = 0.98;
const MIN_RECALL = 0.98;

const corpus = loadCorpus();

test('the corpus is at least 2,000 sentences, ids 1..n, and every type is there', () => {
  assert.ok(corpus.length >= 2000, `${corpus.length} sentences`);
  assert.deepEqual(
    corpus.map((e) => e.id),
    corpus.map((_, i) => i + 1),
  );
  for (const type of PII_TYPES) {
    const n = corpus.reduce((sum, e) => sum + e.spans.filter((s) => s.type === type).length, 0);
    assert.ok(n >= 100, `${type}: ${n} values`);
  }
  const withDecoys = corpus.filter((e) => e.decoys.length > 0).length;
  assert.ok(withDecoys >= corpus.length * 0.4, `${withDecoys} sentences with look-alikes`);
});

test('every span is in range, does not overlap another, and its text has its type’s shape', () => {
  for (const e of corpus) {
    const spans = [...e.spans].sort((a, b) => a.start - b.start);
    for (const [i, s] of spans.entries()) {
      assert.ok(
        s.start >= 0 && s.start < s.end && s.end <= e.text.length,
        `#${e.id} ${s.type} ${s.start}-${s.end}`,
      );
      if (i > 0) assert.ok(spans[i - 1]!.end <= s.start, `#${e.id}: overlapping spans`);
      const value = e.text.slice(s.start, s.end);
      assert.ok(matchesShape(s.type, value), `#${e.id}: "${value}" is no ${s.type}`);
    }
    for (const d of e.decoys)
      assert.ok(d.start >= 0 && d.start < d.end && d.end <= e.text.length, `#${e.id} decoy`);
    // the whole label rule: context words near accounts and insurance numbers, nothing unlabelled
    assert.equal(ruleViolation(e.text, e.spans, e.decoys), null, `#${e.id}: ${e.text}`);
  }
});

test('the corpus file is exactly what the generator writes (regenerate it, never edit it)', () => {
  assert.equal(readFileSync(CORPUS_PATH, 'utf8'), corpusJsonl(generateCorpus()));
});

test(`the detector reaches precision ${MIN_PRECISION} and recall ${MIN_RECALL} on every type`, async () => {
  const detector = await loadDetector();
  assert.ok(detector, 'src/guardrails/pii/detect.ts (detectPii) is missing');
  const report = evaluate('K-AI Hub', corpus, detector);
  const failures: string[] = [];
  for (const type of PII_TYPES) {
    const c = report.exact[type];
    if ((c.precision ?? 0) < MIN_PRECISION || (c.recall ?? 0) < MIN_RECALL) {
      failures.push(
        `${type}: precision ${c.precision?.toFixed(3)} recall ${c.recall?.toFixed(3)} (TP ${c.tp}, FP ${c.fp}, FN ${c.fn})`,
      );
    }
  }
  assert.deepEqual(failures, [], 'see `node --import tsx test/fixtures/pii-corpus/evaluate.ts --markdown`');
});
