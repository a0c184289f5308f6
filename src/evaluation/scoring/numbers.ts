/**
 * Numbers as people and models write them: `1,234`, `−3.5`, `3/4`, `\frac{3}{4}`, `1,200원`, `$12`.
 * HRM8K and GSM8K answers are compared as numbers, never as text.
 */

const NUMBER_IN_TEXT = /[-−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*\/\s*\d+(?:\.\d+)?)?/g;

/** LaTeX a model may wrap its answer in, reduced to plain text. */
function withoutLatex(text: string): string {
  return text
    .replace(/\\d?frac\{([^{}]+)\}\{([^{}]+)\}/g, '$1/$2')
    .replace(/\\boxed\{([^{}]*)\}/g, '$1')
    .replace(/\\[,!;: ]/g, '')
    .replace(/\\(?:text|mathrm)\{([^{}]*)\}/g, '$1');
}

function numberOf(token: string): number | null {
  const plain = token.replace(/−/g, '-').replace(/,/g, '').replace(/\s+/g, '');
  const slash = plain.indexOf('/');
  if (slash !== -1) {
    const numerator = Number(plain.slice(0, slash));
    const denominator = Number(plain.slice(slash + 1));
    if (!Number.isFinite(numerator) || !Number.isFinite(denominator) || denominator === 0) return null;
    return numerator / denominator;
  }
  const n = Number(plain);
  return Number.isFinite(n) ? n : null;
}

/**
 * The number a whole answer field means (`"1,234"`, `"18달러"`, `"\frac{1}{2}"`), or null when it is
 * not one number: a gold answer must be exactly one.
 */
export function parseNumber(text: string): number | null {
  const plain = withoutLatex(text).trim();
  const matches = plain.match(NUMBER_IN_TEXT);
  if (matches === null || matches.length !== 1) return null;
  // what is left around the number may only be a currency, a unit or a full stop
  const rest = plain.replace(matches[0], '').replace(/[$₩%.\s]/g, '');
  if (rest !== '' && !/^[\p{L}]{0,4}$/u.test(rest)) return null;
  return numberOf(matches[0]);
}

/** Every number in a text, in order of appearance. */
export function numbersIn(text: string): number[] {
  const out: number[] = [];
  for (const m of withoutLatex(text).matchAll(NUMBER_IN_TEXT)) {
    const n = numberOf(m[0]);
    if (n !== null) out.push(n);
  }
  return out;
}

/** Equal as answers: within a relative tolerance (default one part in a million), or both zero. */
export function sameNumber(a: number, b: number, tolerance = 1e-6): boolean {
  if (a === b) return true;
  return Math.abs(a - b) <= tolerance * Math.max(1, Math.abs(a), Math.abs(b));
}
