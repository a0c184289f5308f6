/**
 * The records of a benchmark's data file — CSV (RFC 4180), JSON lines or a JSON array — each with the
 * line it starts on, so that a loader can name the line and the field at fault.
 */
import { ValidationError } from '../../errors.ts';

export type Encoding = 'csv' | 'jsonl' | 'json';

export interface SourceRecord {
  /** 1-based line of the file where the record starts (a CSV header is line 1). */
  line: number;
  fields: Record<string, unknown>;
}

/**
 * A data file that cannot be used: the file, the line and the field at fault, in Korean and English.
 * On /admin/v1 it is a 400 naming `data:<line>.<field>`.
 */
export class SuiteDataError extends ValidationError {
  override name = 'SuiteDataError';
  constructor(
    readonly file: string,
    readonly line: number | null,
    readonly field: string | null,
    readonly korean: string,
    readonly english: string,
  ) {
    const where = line === null ? '' : `:${line}`;
    super([
      {
        field: `${file}${where}${field === null ? '' : `.${field}`}`,
        message: `${korean} / ${english}`,
      },
    ]);
    this.message = describeDataError(file, line, field, korean, english);
  }
}

function describeDataError(
  file: string,
  line: number | null,
  field: string | null,
  korean: string,
  english: string,
): string {
  const ko = [file, line === null ? null : `${line}행`, field === null ? null : `필드 "${field}"`]
    .filter(Boolean)
    .join(' ');
  const en = [file, line === null ? null : `line ${line}`, field === null ? null : `field "${field}"`]
    .filter(Boolean)
    .join(', ');
  return `${ko}: ${korean} / ${en}: ${english}`;
}

/** What the file looks like: a JSON array, JSON lines, or else CSV. */
export function detectEncoding(text: string): Encoding {
  const first = text.replace(/^\uFEFF/, '').trimStart()[0];
  if (first === '[') return 'json';
  if (first === '{') return 'jsonl';
  return 'csv';
}

export function readRecords(file: string, text: string, allowed: readonly Encoding[]): SourceRecord[] {
  const encoding = detectEncoding(text);
  if (!allowed.includes(encoding)) {
    throw new SuiteDataError(
      file,
      null,
      null,
      `이 형식은 ${allowed.join(', ')} 파일이어야 합니다(읽은 형식: ${encoding})`,
      `this format expects ${allowed.join(' or ')}, the file reads as ${encoding}`,
    );
  }
  const body = text.replace(/^\uFEFF/, '');
  if (encoding === 'csv') return readCsv(file, body);
  if (encoding === 'jsonl') return readJsonLines(file, body);
  return readJsonArray(file, body);
}

function readJsonLines(file: string, text: string): SourceRecord[] {
  const records: SourceRecord[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.trim();
    if (raw === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (error) {
      throw new SuiteDataError(
        file,
        i + 1,
        null,
        `JSON이 올바르지 않습니다 (${(error as Error).message})`,
        `not valid JSON (${(error as Error).message})`,
      );
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      throw new SuiteDataError(file, i + 1, null, 'JSON 객체여야 합니다', 'must be a JSON object');
    records.push({ line: i + 1, fields: value as Record<string, unknown> });
  }
  return records;
}

/** The line each top-level element of a JSON array starts on (the text is valid JSON). */
function elementLines(text: string): number[] {
  const lines: number[] = [];
  let line = 1;
  let depth = 0;
  let inString = false;
  let escaped = false;
  let expectElement = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\n') line++;
    if (inString) {
      if (escaped) escaped = false;
      else if (c === '\\') escaped = true;
      else if (c === '"') inString = false;
      continue;
    }
    if (depth === 1 && expectElement && !/\s/.test(c)) {
      lines.push(line);
      expectElement = false;
    }
    if (c === '"') inString = true;
    else if (c === '[' || c === '{') {
      depth++;
      if (depth === 1) expectElement = true;
    } else if (c === ']' || c === '}') depth--;
    else if (c === ',' && depth === 1) expectElement = true;
  }
  return lines;
}

function readJsonArray(file: string, text: string): SourceRecord[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new SuiteDataError(
      file,
      null,
      null,
      `JSON이 올바르지 않습니다 (${(error as Error).message})`,
      `not valid JSON (${(error as Error).message})`,
    );
  }
  if (!Array.isArray(value))
    throw new SuiteDataError(file, 1, null, 'JSON 배열이어야 합니다', 'must be a JSON array');
  const lines = elementLines(text);
  return value.map((element, i) => {
    const line = lines[i] ?? 1;
    if (element === null || typeof element !== 'object' || Array.isArray(element))
      throw new SuiteDataError(file, line, null, 'JSON 객체여야 합니다', 'must be a JSON object');
    return { line, fields: element as Record<string, unknown> };
  });
}

/**
 * RFC 4180: fields separated by commas, quoted with `"` when they hold commas, quotes (doubled) or
 * line breaks; CRLF or LF. The first record names the fields.
 */
function readCsv(file: string, text: string): SourceRecord[] {
  const rows: { line: number; cells: string[] }[] = [];
  let cells: string[] = [];
  let cell = '';
  let line = 1;
  let rowLine = 1;
  let quoted = false;
  let atCellStart = true;
  let quoteOpenedOn = 0;
  const endRow = () => {
    cells.push(cell);
    if (!(cells.length === 1 && cells[0] === '')) rows.push({ line: rowLine, cells });
    cells = [];
    cell = '';
    atCellStart = true;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          cell += '"';
          i++;
        } else {
          quoted = false;
        }
      } else {
        if (c === '\n') line++;
        cell += c;
      }
      continue;
    }
    if (c === '"' && atCellStart) {
      quoted = true;
      quoteOpenedOn = line;
      atCellStart = false;
    } else if (c === ',') {
      cells.push(cell);
      cell = '';
      atCellStart = true;
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      endRow();
      line++;
      rowLine = line;
    } else {
      if (c === '"')
        throw new SuiteDataError(
          file,
          line,
          null,
          '따옴표로 시작하지 않은 칸에 따옴표가 있습니다(따옴표는 칸 전체를 감싸고, 안의 따옴표는 두 번 씁니다)',
          'a quote inside an unquoted field (quote the whole field and double the quotes inside)',
        );
      cell += c;
      atCellStart = false;
    }
  }
  if (quoted)
    throw new SuiteDataError(
      file,
      quoteOpenedOn,
      null,
      '닫히지 않은 따옴표가 있습니다',
      'a quoted field is never closed',
    );
  if (cell !== '' || cells.length > 0) endRow();
  if (rows.length === 0) throw new SuiteDataError(file, 1, null, '머리글 행이 없습니다', 'no header row');
  const header = rows[0]!.cells.map((h) => h.trim());
  const seen = new Set<string>();
  for (const name of header) {
    if (name === '') throw new SuiteDataError(file, 1, null, '빈 열 이름이 있습니다', 'an empty column name');
    if (seen.has(name))
      throw new SuiteDataError(file, 1, name, '열 이름이 두 번 나옵니다', 'the column name appears twice');
    seen.add(name);
  }
  return rows.slice(1).map(({ line: at, cells: values }) => {
    if (values.length !== header.length)
      throw new SuiteDataError(
        file,
        at,
        null,
        `열이 ${header.length}개여야 하는데 ${values.length}개입니다`,
        `expected ${header.length} columns, found ${values.length}`,
      );
    const fields: Record<string, unknown> = {};
    header.forEach((name, i) => {
      fields[name] = values[i];
    });
    return { line: at, fields };
  });
}

/** Field readers that fail with the line and the field. */
export class FieldReader {
  constructor(
    private readonly file: string,
    private readonly record: SourceRecord,
  ) {}

  get line(): number {
    return this.record.line;
  }

  has(field: string): boolean {
    const v = this.record.fields[field];
    return v !== undefined && v !== null && v !== '';
  }

  fail(field: string | null, korean: string, english: string): never {
    throw new SuiteDataError(this.file, this.record.line, field, korean, english);
  }

  /** A non-empty string (numbers are taken as their text: CSV has no types). */
  text(field: string): string {
    const v = this.record.fields[field];
    if (v === undefined || v === null) this.fail(field, '필드가 없습니다', 'missing');
    if (typeof v === 'number') return String(v);
    if (typeof v !== 'string') this.fail(field, '문자열이어야 합니다', 'must be a string');
    if (v.trim() === '') this.fail(field, '비어 있습니다', 'is empty');
    return v;
  }

  optionalText(field: string): string | null {
    const v = this.record.fields[field];
    if (v === undefined || v === null || v === '') return null;
    if (typeof v === 'number') return String(v);
    if (typeof v !== 'string') this.fail(field, '문자열이어야 합니다', 'must be a string');
    return v;
  }

  /** An integer in [min, max], given as a number or as its digits. */
  integer(field: string, min: number, max: number): number {
    const v = this.record.fields[field];
    if (v === undefined || v === null || v === '') this.fail(field, '필드가 없습니다', 'missing');
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : NaN;
    if (!Number.isInteger(n) || n < min || n > max)
      this.fail(
        field,
        `${min}–${max} 사이의 정수여야 합니다 (값: ${JSON.stringify(v)})`,
        `must be an integer ${min}–${max} (got ${JSON.stringify(v)})`,
      );
    return n;
  }

  /** A list of non-empty strings, at least `min` long. */
  texts(field: string, min: number): string[] {
    const v = this.record.fields[field];
    if (!Array.isArray(v)) this.fail(field, '문자열 배열이어야 합니다', 'must be an array of strings');
    if (v.length < min)
      this.fail(field, `항목이 ${min}개 이상이어야 합니다`, `must have at least ${min} entries`);
    return v.map((x, i) => {
      if (typeof x !== 'string' || x.trim() === '')
        this.fail(`${field}.${i}`, '비어 있지 않은 문자열이어야 합니다', 'must be a non-empty string');
      return x;
    });
  }

  /** Like `texts`, but null and empty entries allowed (a reference a turn does not have). */
  optionalTexts(field: string): (string | null)[] {
    const v = this.record.fields[field];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) this.fail(field, '배열이어야 합니다', 'must be an array');
    return v.map((x, i) => {
      if (x === null || x === '') return null;
      if (typeof x !== 'string') this.fail(`${field}.${i}`, '문자열이어야 합니다', 'must be a string');
      return x;
    });
  }
}
