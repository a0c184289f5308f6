import assert from 'node:assert/strict';
import { test } from 'node:test';
import { detectPii, maskPii } from './detect.ts';
import type { PiiType } from './types.ts';

/** The same text with full-width digits and hyphens, as some Korean IMEs type them. */
const fullWidth = (s: string) =>
  s.replace(/[0-9]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0)).replace(/-/g, '－');

/**
 * Asserts that `text` holds exactly one finding: the first occurrence of `value`, of `type`; and that
 * behind emoji (surrogate pairs, a skin-tone modifier) the offsets move by their UTF-16 length.
 */
function one(text: string, type: PiiType, value: string): void {
  const start = text.indexOf(value);
  assert.ok(start >= 0, `${value} not in ${text}`);
  assert.deepEqual(detectPii(text), [{ type, start, end: start + value.length }], text);
  const emoji = '😀👍🏽 ';
  assert.deepEqual(
    detectPii(emoji + text),
    [{ type, start: start + 7, end: start + 7 + value.length }],
    `${emoji}${text}`,
  );
}

function none(text: string): void {
  assert.deepEqual(detectPii(text), [], text);
}

/** Every way a value is placed in running Korean text: alone, after a context word, glued to particles. */
function inEveryPlace(type: PiiType, value: string, context: string): void {
  one(`${context} ${value}`, type, value);
  one(`${context}: ${value}입니다.`, type, value);
  one(`${context}는${value}로 확인했습니다`, type, value);
  one(`(${context} ${value})`, type, value);
}

test('rrn: hyphens (ASCII and Unicode), spaces, a dot, none, full-width, glued to particles', () => {
  for (const value of [
    '900101-1234568',
    '900101‐1234568',
    '900101‑1234568',
    '900101–1234568',
    '900101—1234568',
    '900101−1234568',
    '900101－1234568',
    '900101 - 1234568',
    '900101 1234568',
    '900101.1234568',
    '9001011234568',
    fullWidth('900101-1234568'),
    fullWidth('9001011234568'),
  ]) {
    inEveryPlace('rrn', value, '주민등록번호');
  }
  one('900101-1234568', 'rrn', '900101-1234568');
  one('9001011234568', 'rrn', '9001011234568');
});

test('rrn: the century comes from the 7th digit, with leap years', () => {
  one('000229-3123454', 'rrn', '000229-3123454'); // 2000-02-29
  one('991231-9123456', 'rrn', '991231-9123456'); // 1899-12-31, check digit not required when written 6-7
  one('850315-2345678', 'rrn', '850315-2345678');
  none('000229-1123455'); // 1900 was no leap year
  none('900230-1234567'); // 30 February
  none('901301-1234567'); // month 13
  none('900100-1234567'); // day 0
  none('900431-1234567'); // 31 April
  none('991231-3123457'); // 2099: not born yet
  none('301231-4234567');
  one('241231-3123456', 'rrn', '241231-3123456');
});

test('rrn: since October 2020 there is no check digit, so written 6-7 a valid date and gender digit suffice', () => {
  one('201015-3123451', 'rrn', '201015-3123451'); // check digit fails; born under the new scheme
  one('900101-1234567', 'rrn', '900101-1234567'); // check digit fails, date and gender valid
});

test('rrn: a bare 13-digit number needs the check digit or 주민 before it, and no 주문/송장', () => {
  one('9001011234568', 'rrn', '9001011234568'); // check digit holds
  none('9001011234567'); // no check digit, no context
  one('주민번호 9001011234567', 'rrn', '9001011234567');
  none('주문번호 2401151234569'); // a date-prefixed order number whose last digit happens to check
  one('2401151234569', 'rrn', '2401151234569'); // without the word, it is indistinguishable: masked
  none('바코드 8801234567893'); // EAN-13 of a Korean product
  none('8801234567893');
  none('9013011234567'); // invalid date
});

test('rrn: written 6-7 right after a record label (주문번호, 접수번호, 송장 …) with no check digit holding, an order number', () => {
  // the corpus's look-alikes: a real date, a failing check digit, the label right before
  none('주문번호 200101-2340723 이거 배송 언제 와?');
  none('반품 접수번호: 240606-1322185, 회수 예정일 2021-09-25');
  none('처방전 교부번호(250423-6472186)');
  none('예약번호는 210122-6028107입니다');
  none('영수증 번호 900101-1234567');
  none('운송장 900101-1234567');
  none('송장번호 900101 1234567');
  none('거래번호 900101.1234567');
  none(`승인번호 ${fullWidth('900101-1234567')}`);
  none('주문번호 201015-3123451'); // born since October 2020, no check digit: the label decides
  none('주문번호 900101-5123451'); // foreigner, neither formula holds
  // a check digit that holds keeps it personal: people paste their number into any field
  one('주문번호 900101-1234568', 'rrn', '900101-1234568');
  one('접수번호 900101-5123450', 'foreigner_rrn', '900101-5123450');
  one('주문번호 110111-1234569', 'corporate_registration', '110111-1234569');
  // near misses: the label not right before, or not a record label
  one('주문 900101-1234567', 'rrn', '900101-1234567');
  one('주문번호 안내 900101-1234567', 'rrn', '900101-1234567');
  one('주문번호 12345, 고객 900101-1234567', 'rrn', '900101-1234567');
  one('주문자 홍길동 주민번호 200101-2340723', 'rrn', '200101-2340723');
  one('등록번호 900101-1234567', 'rrn', '900101-1234567');
});

test('rrn: not part of a longer number or token', () => {
  for (const text of [
    '1900101-1234568',
    '900101-12345689',
    '900101-1234568-1',
    '1-900101-1234568',
    '900101-1234568.1',
    '99001011234568',
    '90010112345689',
    'ID900101-1234568',
    '900101-1234568A',
    'ORD-900101-1234568',
    'ORD-9001011234568',
    'x_9001011234568',
    '9001011234568@example',
    '#9001011234568',
    '9001011234568원',
    '900101-1234568.pdf',
    '900101 1234568 1',
    '1 900101 1234568',
  ]) {
    none(text);
  }
});

test('foreigner_rrn: gender digits 5-8, with either check formula or none when written 6-7', () => {
  for (const value of [
    '900101-5123450',
    '900101 5123450',
    '9001015123450',
    '9001015123452',
    '900101.5123450',
    fullWidth('900101-5123450'),
  ]) {
    inEveryPlace('foreigner_rrn', value, '외국인등록번호');
  }
  one('9001015123450', 'foreigner_rrn', '9001015123450');
  one('050505-7123454', 'foreigner_rrn', '050505-7123454');
  one('050505-8000000', 'foreigner_rrn', '050505-8000000');
  none('9001015123451'); // bare, neither check formula holds
  none('900230-6123456');
  none('900101-51234501');
});

test('corporate_registration: checksum, and 법인 or an impossible birth date to tell it from a person', () => {
  for (const value of [
    '110111-1234569',
    '110111 1234569',
    '110111.1234569',
    '1101111234569',
    fullWidth('110111-1234569'),
  ]) {
    inEveryPlace('corporate_registration', value, '법인등록번호');
  }
  // written 6-7: the personal check digit fails (as no pre-2020 주민등록번호's does) and the corporate one holds
  one('110111-1234569', 'corporate_registration', '110111-1234569');
  // no valid birth date at all
  one('134511-0001236', 'corporate_registration', '134511-0001236');
  // glued without 법인: too weak, one number in ten passes the checksum
  none('1345110001236');
  one('법인 1345110001236', 'corporate_registration', '1345110001236');
  // 법인 but the corporate checksum fails: a valid person's number stays one
  one('법인 대표 900101-1234568', 'rrn', '900101-1234568');
  none('법인 134511-0001237');
  none('110111-12345690');
});

test('context words in English, any case, at the start of a word: corp, crn, business, brn, insurance, account, acct, bank', () => {
  one('corp_reg_no=1345110001236 검증 통과', 'corporate_registration', '1345110001236');
  one('CRN: 1345110001236', 'corporate_registration', '1345110001236');
  one('Corporate reg. 1101111234569', 'corporate_registration', '1101111234569');
  one('BRN 1248100998', 'business_registration', '1248100998');
  one('business_no="1248100998"', 'business_registration', '1248100998');
  one('Health Insurance No. 12345678901', 'health_insurance', '12345678901');
  one('bank account 110-123-456789', 'bank_account', '110-123-456789');
  one('ACCT: 11012345678901', 'bank_account', '11012345678901');
  one('refund_account=1002123456789', 'bank_account', '1002123456789');
  // near misses: inside a longer word, or no word at all
  none('incorporated 1345110001236');
  none('1345110001236');
  none('databank 110-123-456789');
  none('subaccount 110-123-456789');
  none('nonbusiness 1248100998');
  none('reinsurance 12345678901');
});

test('passport: old (M + 8 digits) and new (M + 3 digits + letter + 4 digits), each type letter', () => {
  for (const value of [
    'M12345678',
    'S12345678',
    'R12345678',
    'O12345678',
    'D12345678',
    'M123A4567',
    'S987Z6543',
  ]) {
    inEveryPlace('passport', value, '여권번호');
  }
  one('M１２３４５６７８', 'passport', 'M１２３４５６７８');
  one('여권M12345678로', 'passport', 'M12345678');
  for (const text of [
    'm12345678',
    'A12345678',
    'AM12345678',
    'M123456789',
    'M1234567',
    'M12345678A',
    'M12345678-1',
    'M123a4567',
    'ORD-M12345678',
  ]) {
    none(text);
  }
  one('M12345678@example.com', 'email', 'M12345678@example.com');
});

test('driver_license: 12 digits with a region code 11-26 or 28, and the older region-name form', () => {
  for (const value of [
    '11-12-345678-90',
    '11 12 345678 90',
    '11.12.345678.90',
    '28-12-345678-90',
    fullWidth('13-12-345678-90'),
  ]) {
    inEveryPlace('driver_license', value, '운전면허번호');
  }
  one('26-12-345678-90', 'driver_license', '26-12-345678-90');
  one('운전면허 111234567890', 'driver_license', '111234567890');
  none('111234567890'); // glued needs 면허/운전 before it
  none('27-12-345678-90');
  none('10-12-345678-90');
  none('29-12-345678-90');
  none('11-12-345678-901');
  none('11-12-345678-90-1');
  one('서울 12-345678-90', 'driver_license', '서울 12-345678-90');
  none('12-345678-90');
});

test('driver_license: the older form’s finding starts at its region name, so the mask covers it', () => {
  one('면허번호 서울 12-345678-90', 'driver_license', '서울 12-345678-90');
  one('면허: 경기12-345678-90입니다', 'driver_license', '경기12-345678-90');
  one('운전면허번호: 전북 86-192898-44 / 발급일: 2025/04/10', 'driver_license', '전북 86-192898-44');
  one(`면허번호 제주 ${fullWidth('85-356049-65')}`, 'driver_license', `제주 ${fullWidth('85-356049-65')}`);
  const text = '운전자 면허번호 강원 91-660504-90 확인';
  assert.equal(maskPii(text, detectPii(text)), '운전자 면허번호 [운전면허번호] 확인');
  // near misses: no region name right before, a longer word ending in one, the wrong grouping
  none('면허번호 12-345678-90');
  none('서울시 12-345678-90');
  none('서울 12-345678-901');
  none('서울 123-45678-90');
});

test('business_registration: 3-2-5 with the official checksum', () => {
  for (const value of [
    '124-81-00998',
    '124 81 00998',
    '124.81.00998',
    fullWidth('124-81-00998'),
    '101-86-00006',
  ]) {
    inEveryPlace('business_registration', value, '사업자등록번호');
  }
  one('124-81-00998', 'business_registration', '124-81-00998');
  one('사업자번호 1248100998', 'business_registration', '1248100998');
  none('1248100998'); // glued: as likely a Unix timestamp or an order number
  none('124-81-00999');
  none('1124-81-00998');
  none('124-81-009981');
  none('124-81-00998-1');
  none('12-481-00998');
});

test('phone: mobile, Seoul, area codes, 070, 050x, representative numbers, written every way', () => {
  for (const value of [
    '010-1234-5678',
    '010 1234 5678',
    '010.1234.5678',
    '01012345678',
    '010–1234–5678',
    fullWidth('010-1234-5678'),
    '011-123-4567',
    '016-1234-5678',
    '019-123-4567',
    '02-123-4567',
    '02-1234-5678',
    '0212345678',
    '031-123-4567',
    '064-1234-5678',
    '070-1234-5678',
    '0505-123-4567',
    '0508-1234-5678',
    '1588-1234',
    '1644 1234',
    '15881234',
  ]) {
    inEveryPlace('phone', value, '연락처');
  }
});

test('phone: +82 forms start at the plus sign', () => {
  for (const value of [
    '+82 10-1234-5678',
    '+82-10-1234-5678',
    '+82 10 1234 5678',
    '+821012345678',
    '+82 1012345678',
    '+82-2-123-4567',
    '+82 2 1234 5678',
    '+82 010-1234-5678',
    '＋８２ １０－１２３４－５６７８',
  ]) {
    inEveryPlace('phone', value, '해외에서는');
  }
  none('+1 415-555-1234');
  none('+86 13812345678');
  none('+82 10-1234-567');
});

test('phone: wrong digit counts, unknown prefixes, dates, amounts', () => {
  for (const text of [
    '010-123-4567', // 010 has a 4-digit middle
    '010-1234-56789',
    '0101-234-5678',
    '1010-1234-5678',
    '010-1234-5678-1',
    '013-1234-5678',
    '039-123-4567',
    '02-12-3456',
    '0501-123-4567',
    '1234-5678',
    '1588-12345',
    '1588.1234',
    '16001234원',
    '15991234%',
    '12345678',
    '2024-01-15',
    '20240115',
    '2024.01.15',
    '1,234,567원',
    '010-1234-5678abc',
  ]) {
    none(text);
  }
});

test('email: practical addresses, Korean glued on either side', () => {
  for (const value of [
    'hong@example.com',
    'hong.gildong+tag@mail.example.co.kr',
    'HONG_GD@EXAMPLE.ORG',
    'a1%b-c@sub-domain.example.kr',
    'user@xn--3e0b707e.kr',
    '010-1234-5678@kakao.com',
  ]) {
    inEveryPlace('email', value, '메일');
  }
  one('메일hong@example.co.kr로', 'email', 'hong@example.co.kr');
  one('보내주세요: hong@example.com.', 'email', 'hong@example.com');
  for (const text of [
    'hong@localhost',
    'hong@example.c',
    'hong@example.123',
    'a..b@example.com',
    '.@example.com',
    'hong.@example.com',
    '@example.com',
    'hong@.com',
    'hong@-example.com',
    'hong@example-.com',
    'hong@@example.com',
    '홍길동@example.com',
    `${'a'.repeat(65)}@example.com`,
  ]) {
    none(text);
  }
  one(`${'a'.repeat(64)}@example.com`, 'email', `${'a'.repeat(64)}@example.com`);
});

test('card: Luhn, card ranges, 4-4-4-4 / 4-6-5 / 4-6-4 or glued', () => {
  for (const value of [
    '4111-1111-1111-1111',
    '4111 1111 1111 1111',
    '4111.1111.1111.1111',
    '4111111111111111',
    fullWidth('4111-1111-1111-1111'),
    '5105-1051-0510-5100',
    '9410-1234-5678-9010',
    '3782-822463-10005',
    '378282246310005',
    '3056-930902-5904',
  ]) {
    inEveryPlace('card', value, '카드번호');
  }
  for (const text of [
    '4111-1111-1111-1112', // Luhn fails
    '1234-5678-9012-3452', // Luhn holds, no card starts with 1
    '4111-1111-1111-1111-1',
    '14111-1111-1111-1111',
    '41111-111-1111-1111',
    '4111-111111-11111',
    '4111 1111 1111 1111 1',
  ]) {
    none(text);
  }
});

test('bank_account: bank formats, only with 계좌 or a bank name before', () => {
  const accounts: Array<[string, string]> = [
    ['국민', '123456-78-901234'],
    ['KB국민은행', '123-45-6789-012'],
    ['신한', '110-123-456789'],
    ['신한은행', '110-12-345678'],
    ['우리', '1002-123-456789'],
    ['하나', '123-456789-12345'],
    ['농협', '123-4567-8901-23'],
    ['NH농협', '123456-78-901234'],
    ['기업', '123-456789-01-234'],
    ['카카오뱅크', '3333-01-2345678'],
    ['토스뱅크', '1000-1234-5678'],
    ['SC제일', '123-45-678901'],
    ['우체국', '012345-67-890123'],
    ['새마을금고', '9002-1234-5678-9'],
    ['계좌번호', '110 123 456789'],
    ['계좌', '110.123.456789'],
    ['입금 계좌', '11012345678901'],
    ['예금주 홍길동,', fullWidth('110-123-456789')],
  ];
  for (const [bank, value] of accounts) {
    // a bank's name takes no particle before its number, so the places differ from inEveryPlace's
    one(`${bank} ${value}`, 'bank_account', value);
    one(`${bank}: ${value}입니다.`, 'bank_account', value);
    one(`${bank}${value}로 보내 주세요`, 'bank_account', value);
    one(`(${bank} ${value})`, 'bank_account', value);
  }
  one('입금은 신한은행 110-123-456789(예금주 홍길동)', 'bank_account', '110-123-456789');
  none('110-123-456789');
  none('1002-123-456789');
  none('우리 회사의 2024년 예산 코드는 1002-123-456789'); // 우리 ("we") counts only right before the number
  none('계좌 110-123-4567890123'); // not a bank grouping
  none('계좌 123456789'); // 9 digits
  none('계좌 110-123-456789-1');
  // a stronger type claims the digits even after 계좌
  one('계좌 4111-1111-1111-1111', 'card', '4111-1111-1111-1111');
  one('계좌 010-1234-5678', 'phone', '010-1234-5678');
});

test('bank_account: 송금, 입금, 이체 or 계좌 shortly after the number (Korean word order)', () => {
  one('110-153-624925로 송금했습니다. 입금자명 고지영', 'bank_account', '110-153-624925');
  one('3333-01-2345678으로 입금 부탁드려요', 'bank_account', '3333-01-2345678');
  one('1002-123-456789 계좌로 보내 주세요', 'bank_account', '1002-123-456789');
  one('11012345678901로 이체', 'bank_account', '11012345678901');
  one(`${fullWidth('3333-37-3548405')}로 송금했습니다.`, 'bank_account', fullWidth('3333-37-3548405'));
  // the word must be near (12 units), in the same sentence, and not past another number
  none('110-123-456789 번호로 연락 주시면 바로 송금');
  none('110-153-624925. 송금은 내일 할게요');
  none('110-153-624925\n송금 완료');
  assert.deepEqual(detectPii('110-123-456789 1002-123-456789로 송금'), [
    { type: 'bank_account', start: 15, end: 30 },
  ]);
  none('110-153-624925로 보냈습니다'); // no account word after it either
  none('보낸 금액 1,234,567원을 송금'); // an amount stays one
  one('4111-1111-1111-1111로 송금', 'card', '4111-1111-1111-1111');
  one('010-1234-5678로 송금', 'phone', '010-1234-5678');
});

test('bank_account and health_insurance: a record label right before (접수번호, 승인번호, 영수증 …) says what the number is', () => {
  assert.deepEqual(detectPii('계좌 110-266-390884 이체 부탁해. 접수번호 7066157855'), [
    { type: 'bank_account', start: 3, end: 17 },
  ]);
  none('KB국민은행 계좌로 송금 완료, 승인번호 11012345678901');
  none('입금 영수증 110-123-456789');
  none('송금 거래번호: 11012345678901');
  none('3333-01-2345678 관리번호는 1002123456789로 입금');
  none('건강보험 청구 접수번호 12345678901');
  // near misses: the label not right before the number
  one('송금 거래 계좌 110-123-456789', 'bank_account', '110-123-456789');
  one('접수번호 확인 후 계좌 110-123-456789', 'bank_account', '110-123-456789');
  one('건강보험 12345678901 (접수 완료)', 'health_insurance', '12345678901');
});

test('health_insurance: 11 digits (1-2345678901 or glued) after 건강보험/보험증/건보', () => {
  for (const [context, value] of [
    ['건강보험증 번호', '1-2345678901'],
    ['건강보험', '12345678901'],
    ['건보', '5 1234567890'],
    ['의료보험', fullWidth('1-2345678901')],
    ['보험증', '1–2345678901'],
  ] as const) {
    inEveryPlace('health_insurance', value, context);
  }
  none('1-2345678901');
  none('12345678901');
  none('건강보험 1-2345678901-2');
  none('건강보험 1.2345678901');
  none('건강보험 123-4567-8901');
});

test('what merely looks alike is left alone', () => {
  for (const text of [
    '회의는 2024-01-15 14:30에, 마감은 2024.01.15, 기록은 20240115.',
    '총액 1,234,567원, 예산 12,000,000원, 할인 15%, 환율 1,350.25',
    'v1.2.3으로 올리고 node 2.10.4, 20.20.2를 씁니다',
    '프로젝트 번호 PRJ-2024-000123, 주문번호 ORD-20240115-8891, 영수증 2024011500123',
    '우편번호 06236, 구 우편번호 135-080',
    '1732924800, 1732924800123',
    'IP 192.168.0.1, 좌표 37.5665, 126.9780',
    '550e8400-e29b-41d4-a716-446655440000',
    '9013011234567 9001311234567',
    '전화 010-123-45678',
    '',
    '개인정보가 없는 평범한 한국어 문장입니다.',
  ]) {
    none(text);
  }
});

test('offsets are UTF-16 units of the original text, emoji and full-width digits included', () => {
  const text = '😀👍🏽 연락처 ０１０－１２３４－５６７８, 메일 hong@example.com 😀';
  // 😀 2 units, 👍🏽 4 units, then a space: "연락처 " starts at 7
  assert.deepEqual(detectPii(text), [
    { type: 'phone', start: 11, end: 24 },
    { type: 'email', start: 29, end: 45 },
  ]);
  assert.equal(text.slice(11, 24), '０１０－１２３４－５６７８');
  assert.equal(text.slice(29, 45), 'hong@example.com');

  const korean = '𝕏 주민번호:900101-1234568입니다';
  assert.deepEqual(detectPii(korean), [{ type: 'rrn', start: 8, end: 22 }]);
});

test('several findings in one text, in order, and a list of values separated by spaces', () => {
  const text =
    '홍길동(900101-1234568)의 연락처는 010-1234-5678, 메일은 hong@example.com, 여권 M12345678, 신한 110-123-456789입니다.';
  assert.deepEqual(
    detectPii(text).map((f) => [f.type, text.slice(f.start, f.end)]),
    [
      ['rrn', '900101-1234568'],
      ['phone', '010-1234-5678'],
      ['email', 'hong@example.com'],
      ['passport', 'M12345678'],
      ['bank_account', '110-123-456789'],
    ],
  );
  const list = '01012345678 01023456789 010-3456-7890 02-123-4567';
  assert.deepEqual(
    detectPii(list).map((f) => list.slice(f.start, f.end)),
    ['01012345678', '01023456789', '010-3456-7890', '02-123-4567'],
  );
  const slashed = '010-1234-5678/02-123-4567,010-2345-6789';
  assert.deepEqual(
    detectPii(slashed).map((f) => slashed.slice(f.start, f.end)),
    ['010-1234-5678', '02-123-4567', '010-2345-6789'],
  );
  none('https://example.com/u/9001011234568');
  none('https://example.com/9001011234568/edit');
  const many = Array.from({ length: 7 }, (_, k) => `0101234567${k}`).join(' ');
  assert.equal(detectPii(many).length, 7);
});

test('only restricts what is reported, not what is considered', () => {
  const text = '계좌 4111-1111-1111-1111, 연락처 010-1234-5678, hong@example.com, M12345678';
  assert.deepEqual(
    detectPii(text, new Set(['phone'])).map((f) => f.type),
    ['phone'],
  );
  assert.deepEqual(detectPii(text, new Set(['bank_account'])), []);
  assert.deepEqual(
    detectPii(text, new Set(['email', 'passport'])).map((f) => f.type),
    ['email', 'passport'],
  );
  assert.deepEqual(detectPii(text, new Set()), []);
});

test('maskPii replaces each finding with its Korean label', () => {
  const text = '주민번호 900101-1234568, 전화 010-1234-5678로 연락, 메일 hong@example.com';
  assert.equal(
    maskPii(text, detectPii(text)),
    '주민번호 [주민등록번호], 전화 [전화번호]로 연락, 메일 [이메일]',
  );
  assert.equal(maskPii('없음', []), '없음');
  assert.equal(maskPii('010-1234-5678', detectPii('010-1234-5678')), '[전화번호]');
  const all =
    '900101-1234568 900101-5123450 M12345678 11-12-345678-90 124-81-00998 법인 110111-1234569 ' +
    '010-1234-5678 a@b.kr 4111111111111111 계좌 110-123-456789 건보 12345678901';
  assert.equal(
    maskPii(all, detectPii(all)),
    '[주민등록번호] [외국인등록번호] [여권번호] [운전면허번호] [사업자등록번호] 법인 [법인등록번호] ' +
      '[전화번호] [이메일] [카드번호] 계좌 [계좌번호] 건보 [건강보험번호]',
  );
});

test('maskPii takes findings in any order and skips overlapping or out-of-range ones', () => {
  const text = 'a 010-1234-5678 b hong@example.com';
  const findings = detectPii(text);
  assert.equal(maskPii(text, [...findings].reverse()), 'a [전화번호] b [이메일]');
  assert.equal(
    maskPii(text, [
      { type: 'phone', start: 2, end: 15 },
      { type: 'card', start: 5, end: 10 },
      { type: 'email', start: 18, end: 999 },
    ]),
    'a [전화번호] b hong@example.com',
  );
});
