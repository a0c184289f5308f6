import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toFlag } from './flags.ts';
import { displayWidth, renderRecord, renderTable } from './table.ts';

test('Hangul takes two columns, so Korean rows line up with Latin ones', () => {
  assert.equal(displayWidth('서울'), 4);
  assert.equal(displayWidth('LG AI연구원'), 5 + 6);
  const text = renderTable(
    [
      { header: '이름 Name', value: (r: { name: string; n: number }) => r.name },
      { header: 'N', value: (r) => r.n, align: 'right' },
    ],
    [
      { name: '한국지능정보사회진흥원', n: 1 },
      { name: 'KT', n: 1234 },
    ],
  );
  const lines = text.trimEnd().split('\n');
  assert.equal(lines.length, 4);
  // Every line ends its last column at the same display column.
  const widths = lines.map(displayWidth);
  assert.deepEqual(widths, [widths[0], widths[0], widths[0], widths[0]]);
  assert.match(lines[3]!, /^KT\s+1234$/);
});

test('records print one field per line; null shows as nothing, lists joined', () => {
  assert.equal(
    renderRecord({ id: 'x', website: null, purposes: ['chat', 'code'] }),
    'id        x\nwebsite\npurposes  chat,code\n',
  );
});

test('flags are the kebab-case of the API field names', () => {
  assert.equal(toFlag('priceInputPer1M'), 'price-input-per-1m');
  assert.equal(toFlag('contextWindow'), 'context-window');
  assert.equal(toFlag('apiKey'), 'api-key');
  assert.equal(toFlag('name'), 'name');
});
