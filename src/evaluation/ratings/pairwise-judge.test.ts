import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { combineVerdicts, pairwiseMessages, parsePairVerdict } from './pairwise-judge.ts';

describe('pairwise judge', () => {
  test('the last bracketed verdict counts; C, tie and 무승부 are ties; none is unparsed', () => {
    assert.equal(parsePairVerdict('처음엔 [[B]] 같았으나 결론은 [[A]]'), 'A');
    assert.equal(parsePairVerdict('결론: [[b]]'), 'B');
    assert.equal(parsePairVerdict('[[C]]'), 'tie');
    assert.equal(parsePairVerdict('[[무승부]]'), 'tie');
    assert.equal(parsePairVerdict('A가 낫습니다.'), null);
    assert.equal(parsePairVerdict('[[D]]'), null);
  });

  test('agreement across the swap wins; a position-biased judge gives a tie; unparsed stays apart', () => {
    // straight: a sits in position A; swapped: b sits in position A
    assert.equal(combineVerdicts('A', 'B'), 'a');
    assert.equal(combineVerdicts('B', 'A'), 'b');
    assert.equal(combineVerdicts('tie', 'tie'), 'tie');
    assert.equal(combineVerdicts('A', 'A'), 'tie', 'always the first position: a disagreement');
    assert.equal(combineVerdicts('A', 'tie'), 'tie');
    assert.equal(combineVerdicts(null, 'B'), null);
    assert.equal(combineVerdicts('A', null), null);
  });

  test('the prompt shows each answer in its position; conversations turn by turn', () => {
    const one = pairwiseMessages({ id: 'p', system: null, turns: ['질문?'] }, ['가'], ['나']);
    assert.match(
      one[1]!.content as string,
      /\[사용자 질문\]\n질문\?[\s\S]*A의 답변 시작\]\n가\n[\s\S]*B의 답변 시작\]\n나\n/,
    );
    const two = pairwiseMessages({ id: 'p', system: null, turns: ['하나', '둘'] }, ['1', '2'], ['x', 'y']);
    assert.match(
      two[1]!.content as string,
      /사용자: 둘\n\n어시스턴트 A: 2[\s\S]*사용자: 둘\n\n어시스턴트 B: y/,
    );
  });
});
