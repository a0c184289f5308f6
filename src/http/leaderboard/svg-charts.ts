/**
 * Inline SVG charts for the leaderboard page: drawn on the server, no script, readable without one
 * (each chart has a title and description for screen readers, each point a tooltip).
 */

export const escapeXml = (text: string) =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );

/** Told apart without relying on colour alone: each series also has its own marker shape. */
export const PALETTE = [
  '#1f5fbf',
  '#c0392b',
  '#27864a',
  '#7d3c98',
  '#d35400',
  '#138d90',
  '#6e4b2a',
  '#b03a78',
];
const MARKERS = ['circle', 'square', 'diamond', 'triangle'] as const;

const fmt = (n: number, digits = 1) => n.toFixed(digits);

function marker(kind: (typeof MARKERS)[number], x: number, y: number, colour: string, tip: string): string {
  const title = `<title>${escapeXml(tip)}</title>`;
  const r = 4.5;
  switch (kind) {
    case 'circle':
      return `<circle cx="${fmt(x)}" cy="${fmt(y)}" r="${r}" fill="${colour}">${title}</circle>`;
    case 'square':
      return `<rect x="${fmt(x - r)}" y="${fmt(y - r)}" width="${2 * r}" height="${2 * r}" fill="${colour}">${title}</rect>`;
    case 'diamond':
      return `<path d="M${fmt(x)} ${fmt(y - r - 1)}L${fmt(x + r + 1)} ${fmt(y)}L${fmt(x)} ${fmt(y + r + 1)}L${fmt(x - r - 1)} ${fmt(y)}Z" fill="${colour}">${title}</path>`;
    case 'triangle':
      return `<path d="M${fmt(x)} ${fmt(y - r - 1)}L${fmt(x + r + 1)} ${fmt(y + r)}L${fmt(x - r - 1)} ${fmt(y + r)}Z" fill="${colour}">${title}</path>`;
  }
}

function niceTicks(min: number, max: number, count = 5): number[] {
  const span = max - min;
  if (!(span > 0)) return [min];
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => span / s <= count) ?? raw;
  const ticks: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + 1e-9; v += step) ticks.push(Number(v.toFixed(6)));
  return ticks;
}

export interface LineSeries {
  label: string;
  /** One value per x label; null: not in that round. */
  values: (number | null)[];
}

export interface LineChartOptions {
  id: string;
  title: string;
  description: string;
  xLabels: string[];
  series: LineSeries[];
  yMin: number;
  yMax: number;
  unit: string;
  /** A dashed reference line (the threshold). */
  guide?: { value: number; label: string };
}

/** Values across rounds, a line per team (broken where a team was not in a round). */
export function lineChart(o: LineChartOptions): string {
  const width = 680;
  const height = 300;
  const left = 52;
  const right = 190;
  const top = 20;
  const bottom = 44;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const xs = o.xLabels.map((_, i) =>
    o.xLabels.length === 1 ? left + plotW / 2 : left + (plotW * i) / (o.xLabels.length - 1),
  );
  const y = (v: number) => top + plotH - ((v - o.yMin) / (o.yMax - o.yMin)) * plotH;
  const parts: string[] = [];
  for (const t of niceTicks(o.yMin, o.yMax)) {
    parts.push(
      `<line x1="${left}" x2="${left + plotW}" y1="${fmt(y(t))}" y2="${fmt(y(t))}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${fmt(y(t) + 4)}" text-anchor="end" font-size="11">${t}${escapeXml(o.unit)}</text>`,
    );
  }
  o.xLabels.forEach((label, i) => {
    parts.push(
      `<text x="${fmt(xs[i]!)}" y="${height - bottom + 18}" text-anchor="middle" font-size="11">${escapeXml(label)}</text>`,
    );
  });
  if (o.guide && o.guide.value >= o.yMin && o.guide.value <= o.yMax) {
    const gy = fmt(y(o.guide.value));
    parts.push(
      `<line x1="${left}" x2="${left + plotW}" y1="${gy}" y2="${gy}" stroke="#555" stroke-dasharray="5 4"/>`,
      `<text x="${left + plotW - 2}" y="${fmt(y(o.guide.value) - 5)}" text-anchor="end" font-size="11" fill="#333">${escapeXml(o.guide.label)}</text>`,
    );
  }
  o.series.forEach((s, k) => {
    const colour = PALETTE[k % PALETTE.length]!;
    const shape = MARKERS[k % MARKERS.length]!;
    let path = '';
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null) {
        pen = false;
        return;
      }
      path += `${pen ? 'L' : 'M'}${fmt(xs[i]!)} ${fmt(y(v))}`;
      pen = true;
    });
    if (path) parts.push(`<path d="${path}" fill="none" stroke="${colour}" stroke-width="2"/>`);
    s.values.forEach((v, i) => {
      if (v !== null)
        parts.push(marker(shape, xs[i]!, y(v), colour, `${s.label} · ${o.xLabels[i]}: ${fmt(v)}${o.unit}`));
    });
    const ly = top + 14 + k * 20;
    parts.push(
      marker(shape, width - right + 16, ly - 4, colour, s.label),
      `<text x="${width - right + 28}" y="${ly}" font-size="12">${escapeXml(s.label)}</text>`,
    );
  });
  return svg(o.id, o.title, o.description, width, height, parts);
}

export interface IntervalRow {
  label: string;
  value: number;
  lower: number;
  upper: number;
  /** Drawn hollow (an eliminated or disqualified team). */
  muted?: boolean;
}

/** A dot and its 95% interval per row: what "not separated by its interval" looks like. */
export function intervalChart(
  id: string,
  title: string,
  description: string,
  rows: IntervalRow[],
  unit: string,
): string {
  const width = 680;
  const rowH = 26;
  const left = 180;
  const right = 30;
  const top = 12;
  const bottom = 34;
  const height = top + bottom + rowH * Math.max(rows.length, 1);
  const lo = Math.min(...rows.map((r) => r.lower));
  const hi = Math.max(...rows.map((r) => r.upper));
  const pad = Math.max((hi - lo) * 0.08, 1);
  const [min, max] = [lo - pad, hi + pad];
  const plotW = width - left - right;
  const x = (v: number) => left + ((v - min) / (max - min)) * plotW;
  const parts: string[] = [];
  for (const t of niceTicks(min, max)) {
    parts.push(
      `<line x1="${fmt(x(t))}" x2="${fmt(x(t))}" y1="${top}" y2="${height - bottom}" stroke="#e2e2e2"/>`,
      `<text x="${fmt(x(t))}" y="${height - bottom + 16}" text-anchor="middle" font-size="11">${t}${escapeXml(unit)}</text>`,
    );
  }
  rows.forEach((r, i) => {
    const cy = top + rowH * i + rowH / 2;
    const colour = r.muted ? '#888' : PALETTE[0]!;
    parts.push(
      `<text x="${left - 8}" y="${fmt(cy + 4)}" text-anchor="end" font-size="12">${escapeXml(r.label)}</text>`,
      `<line x1="${fmt(x(r.lower))}" x2="${fmt(x(r.upper))}" y1="${fmt(cy)}" y2="${fmt(cy)}" stroke="${colour}" stroke-width="2"/>`,
      `<circle cx="${fmt(x(r.value))}" cy="${fmt(cy)}" r="5" fill="${r.muted ? '#fff' : colour}" stroke="${colour}" stroke-width="2"><title>${escapeXml(`${r.label}: ${fmt(r.value)}${unit} [${fmt(r.lower)}–${fmt(r.upper)}]`)}</title></circle>`,
    );
  });
  return svg(id, title, description, width, height, parts);
}

function svg(id: string, title: string, description: string, width: number, height: number, parts: string[]) {
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="100%" role="img" aria-labelledby="${id}-t ${id}-d" font-family="inherit"><title id="${id}-t">${escapeXml(title)}</title><desc id="${id}-d">${escapeXml(description)}</desc>${parts.join('')}</svg>`;
}
