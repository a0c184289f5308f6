import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inflateRawSync } from 'node:zlib';
import { decimalCell, writeCsv, writeXlsx } from './xlsx.ts';

test('amounts keep every digit in CSV and XLSX, past what a double holds; other text stays text', () => {
  // a billion won with its µ₩: 19 significant digits, a double keeps 15–17
  const amount = '1234567890123.456789';
  assert.notEqual(String(Number(amount)), amount);
  const rows = [
    ['항목 Item', '금액 Amount'],
    ['금액 Amount, KRW', decimalCell(amount)],
    ['"quoted"', decimalCell('not 1 number')],
  ];
  assert.equal(
    writeCsv(rows),
    `\ufeff항목 Item,금액 Amount\r\n"금액 Amount, KRW",${amount}\r\n"""quoted""",not 1 number\r\n`,
  );
  // the sheet's XML is the ZIP's one deflated part that holds the cells
  const zip = writeXlsx([{ name: 'x', rows }]);
  let sheet = '';
  for (let at = zip.indexOf('PK\u0003\u0004'); at >= 0; at = zip.indexOf('PK\u0003\u0004', at + 4)) {
    const size = zip.readUInt32LE(at + 18);
    const nameLength = zip.readUInt16LE(at + 26);
    const extra = zip.readUInt16LE(at + 28);
    const name = zip.subarray(at + 30, at + 30 + nameLength).toString();
    if (name.startsWith('xl/worksheets/'))
      sheet = inflateRawSync(
        zip.subarray(at + 30 + nameLength + extra, at + 30 + nameLength + extra + size),
      ).toString();
  }
  assert.match(sheet, new RegExp(`<c r="B2"><v>${amount.replace('.', '\\.')}</v></c>`));
  assert.match(sheet, /<c r="B3" t="inlineStr"><is><t xml:space="preserve">not 1 number<\/t><\/is><\/c>/);
});
