import { ValidationError } from '../../errors.ts';
import type { AdminResult } from './router.ts';

/** A document an admin route gives as JSON, CSV or XLSX (`?format=`): statements, for instance. */
export interface Downloadable<T> {
  body: T;
  csv(body: T): string;
  xlsx(body: T): Buffer;
  filename(body: T, extension: 'csv' | 'xlsx'): string;
}

const CONTENT_TYPES = {
  csv: 'text/csv; charset=utf-8',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
} as const;

/** The document in the format asked for; any other format is a validation error naming `format`. */
export function inFormat<T>(format: string | undefined, d: Downloadable<T>): AdminResult {
  if (format === undefined || format === 'json') return { status: 200, body: d.body };
  if (format !== 'csv' && format !== 'xlsx') throw ValidationError.of('format', 'json, csv or xlsx');
  return {
    status: 200,
    file: {
      contentType: CONTENT_TYPES[format],
      filename: d.filename(d.body, format),
      content: format === 'csv' ? d.csv(d.body) : d.xlsx(d.body),
    },
  };
}
