import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Pseudonyms, StreamRestorer } from './pseudonyms.ts';

function withTwo(): Pseudonyms {
  const p = new Pseudonyms();
  assert.equal(p.placeholder('rrn', '900101-1234568'), '[주민등록번호_1]');
  assert.equal(p.placeholder('phone', '010-1234-5678'), '[전화번호_1]');
  assert.equal(
    p.placeholder('rrn', '900101-1234568'),
    '[주민등록번호_1]',
    'the same value, the same placeholder',
  );
  assert.equal(p.placeholder('rrn', '851212-2345678'), '[주민등록번호_2]');
  return p;
}

test('restore puts every placeholder of the call back and leaves look-alikes alone', () => {
  const p = withTwo();
  assert.equal(
    p.restore('[주민등록번호_1]님 [[전화번호_1]] [주민등록번호_9] [주민등록번호_2] [이메일_1] [미완성'),
    '900101-1234568님 [010-1234-5678] [주민등록번호_9] 851212-2345678 [이메일_1] [미완성',
  );
  assert.equal(p.restore('개인정보 없음'), '개인정보 없음');
  assert.equal(new Pseudonyms().restore('[주민등록번호_1]'), '[주민등록번호_1]');
});

test('a placeholder split across chunks at every possible boundary is restored, nothing held for good', () => {
  const p = withTwo();
  const answer = '확인: [주민등록번호_1] 고객님([전화번호_1])과 [주민등록번호_2], 그리고 [기타] 와 [주민';
  const expected = p.restore(answer);
  // every single cut, and every pair of cuts
  for (let i = 0; i <= answer.length; i++) {
    for (let j = i; j <= answer.length; j++) {
      const r = new StreamRestorer(p);
      const out = r.push(answer.slice(0, i)) + r.push(answer.slice(i, j)) + r.push(answer.slice(j)) + r.end();
      assert.equal(out, expected, `cut at ${i} and ${j}`);
    }
  }
  // one character per chunk
  const r = new StreamRestorer(p);
  let out = '';
  for (const ch of answer) out += r.push(ch);
  assert.equal(out + r.end(), expected);
});

test('text that cannot become a placeholder is sent at once', () => {
  const r = new StreamRestorer(withTwo());
  assert.equal(r.push('안녕 [주민'), '안녕 ');
  assert.equal(r.holding, true);
  assert.equal(r.push('등록'), '');
  assert.equal(r.push('X'), '[주민등록X', 'no placeholder goes on like this: sent as it is');
  assert.equal(r.holding, false);
  assert.equal(r.push('[전화번호_1]!'), '010-1234-5678!');
});
