/**
 * What a parsed request body may hold for the hub to carry it: nesting no deeper than
 * `MAX_JSON_DEPTH`, and only numbers that JSON.stringify writes back as numbers.
 *
 * Both checks are one iterative walk (an explicit stack, no recursion), so a body nested 100,000
 * levels deep is refused with a 400 instead of overflowing the stack later, in JSON.stringify on the
 * way to the upstream (which used to come back as a 502 "Maximum call stack size exceeded").
 *
 * Plain JavaScript (types in json-limits.d.mts): the parse workers load it without the TypeScript
 * loader, which would make each worker start 5–10 times slower and 20 MB larger (docs/decisions/0012).
 */

/**
 * 128 levels, serde_json's default recursion limit. Real requests stay far below it: OpenAI's
 * structured outputs accept schemas of at most 10 object levels (≈ 25 JSON levels with the request
 * around them), and a content part with an image is 6 levels deep. Jackson allows 1,000 and .NET's
 * System.Text.Json 64; 128 leaves room for hand-written tool schemas nested 60 objects deep.
 */
export const MAX_JSON_DEPTH = 128;

/** Paths are cut to this many characters (a path 129 levels deep is several hundred). */
const MAX_PATH_CHARS = 200;

/**
 * The first value that breaks a limit, or null. The common case (no violation) pays one walk with
 * two flat stacks and no allocation per node; only a violation pays for finding its path.
 */
export function findJsonLimitViolation(root, maxDepth = MAX_JSON_DEPTH) {
  if (typeof root === 'number') return Number.isFinite(root) ? null : { code: 'invalid_number', path: '' };
  if (root === null || typeof root !== 'object') return null;
  if (maxDepth < 1) return { code: 'nesting_too_deep', path: '' };
  const values = [root];
  const depths = [1];
  while (values.length > 0) {
    const value = values.pop();
    const childDepth = depths.pop() + 1;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const child = value[i];
        if (typeof child === 'object' && child !== null) {
          if (childDepth > maxDepth) return locateViolation(root, maxDepth);
          values.push(child);
          depths.push(childDepth);
        } else if (typeof child === 'number' && !Number.isFinite(child)) {
          return locateViolation(root, maxDepth);
        }
      }
    } else {
      for (const key in value) {
        const child = value[key];
        if (typeof child === 'object' && child !== null) {
          if (childDepth > maxDepth) return locateViolation(root, maxDepth);
          values.push(child);
          depths.push(childDepth);
        } else if (typeof child === 'number' && !Number.isFinite(child)) {
          return locateViolation(root, maxDepth);
        }
      }
    }
  }
  return null;
}

/**
 * The first violation in document order, with its path: a walk that keeps one frame per open
 * container (its keys and the position reached), still without recursion.
 */
function locateViolation(root, maxDepth) {
  const containers = [root];
  // the keys of each open object; null for an array
  const keyLists = [Array.isArray(root) ? null : Object.keys(root)];
  const positions = [0];
  let top = 0;
  while (top >= 0) {
    const container = containers[top];
    const keys = keyLists[top];
    const position = positions[top];
    const size = keys === null ? container.length : keys.length;
    if (position >= size) {
      top--;
      continue;
    }
    positions[top] = position + 1;
    const child = keys === null ? container[position] : container[keys[position]];
    if (typeof child === 'number' && !Number.isFinite(child)) {
      return { code: 'invalid_number', path: pathOf(keyLists, positions, top) };
    }
    if (typeof child !== 'object' || child === null) continue;
    if (top + 2 > maxDepth) return { code: 'nesting_too_deep', path: pathOf(keyLists, positions, top) };
    top++;
    containers[top] = child;
    keyLists[top] = Array.isArray(child) ? null : Object.keys(child);
    positions[top] = 0;
  }
  return null;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** The path to the child last taken at each open frame, as OpenAI names params (`a.b[0].c`). */
function pathOf(keyLists, positions, top) {
  let path = '';
  for (let f = 0; f <= top; f++) {
    const keys = keyLists[f];
    const index = positions[f] - 1;
    if (keys === null) path += `[${index}]`;
    else {
      const key = keys[index];
      path += IDENTIFIER.test(key) ? (path === '' ? key : `.${key}`) : `[${JSON.stringify(key)}]`;
    }
    if (path.length > MAX_PATH_CHARS) return `${path.slice(0, MAX_PATH_CHARS)}…`;
  }
  return path;
}

/**
 * Why a body could not be taken: not JSON, not an object, or over a limit. A class so that it cannot
 * be mistaken for a parsed body; plain fields so that it crosses threads (the pool rebuilds it).
 */
export class JsonBodyFailure {
  /** `path`: the field path for a limit; null when the body as a whole is wrong. */
  constructor(code, message, path) {
    this.code = code;
    this.message = message;
    this.path = path;
  }
}

/**
 * Parses the text of a request body that must be a JSON object within the limits. Returns the object
 * or what is wrong with it; used the same way on the event loop (small bodies) and in the parse
 * workers (large ones).
 */
export function parseJsonObjectText(text, maxDepth = MAX_JSON_DEPTH) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return new JsonBodyFailure('invalid_json', `request body is not valid JSON: ${error.message}`, null);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    return new JsonBodyFailure('invalid_json', 'request body must be a JSON object', null);
  }
  const violation = findJsonLimitViolation(value, maxDepth);
  if (!violation) return value;
  const message =
    violation.code === 'nesting_too_deep'
      ? `request body nests deeper than ${maxDepth} levels at '${violation.path}'`
      : `number at '${violation.path}' is out of range (JSON numbers must be finite, at most ±1.7976931348623157e308)`;
  return new JsonBodyFailure(violation.code, message, violation.path);
}
