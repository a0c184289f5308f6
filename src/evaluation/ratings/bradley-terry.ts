import { seededRandom } from '../seeded-random.ts';

/**
 * Bradley–Terry ratings from pairwise battles (docs/evaluation-rounds.md#arenas): P(i beats j) =
 * σ(θᵢ − θⱼ). A tie counts as half a win to each side, as Chatbot Arena counts it.
 *
 * Fitted by Newton's method on the log-likelihood plus a small prior: every model also plays `prior`
 * pseudo-battles against an anchor of strength 0, half won and half lost. Without it a model that won
 * (or lost) every battle has no finite maximum and MM or Newton would walk off to infinity; with it the
 * likelihood is strictly concave, so Newton with step halving always converges, in a handful of steps
 * (MM needs thousands when strengths are far apart, which a bootstrap of a thousand fits cannot afford).
 * Strengths are reported centred (mean θ = 0), on an Elo-like scale: 1000 + 400·log₁₀(e)·θ.
 */

export type BattleOutcome = 'a' | 'b' | 'tie';

export interface Battle {
  a: string;
  b: string;
  outcome: BattleOutcome;
}

export interface FitOptions {
  /** Pseudo-battles per model against the anchor (half won, half lost); > 0. */
  prior?: number;
  maxIterations?: number;
  /** Stop once no strength moves more than this (in nats). */
  tolerance?: number;
}

export interface Fit {
  models: string[];
  /** Centred log-strengths, in the order of `models`. */
  strengths: Float64Array;
  iterations: number;
  converged: boolean;
}

export const DEFAULT_PRIOR = 1;
/** Points per nat on the Elo-like scale: 400 points = 10× the odds. */
export const RATING_SCALE = 400 / Math.LN10;
export const RATING_CENTRE = 1000;

/** log(eˣ + eʸ) without overflow. */
function logAddExp(x: number, y: number): number {
  const m = Math.max(x, y);
  return m + Math.log(Math.exp(x - m) + Math.exp(y - m));
}

const sigmoid = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

/** Battles as model indices and half-win counts: wins[i·k + j] = how often i beat j (ties as ½). */
interface Indexed {
  models: string[];
  a: Int32Array;
  b: Int32Array;
  /** 2: a won, 0: b won, 1: a tie (in half wins for a). */
  halfWinsOfA: Uint8Array;
}

function indexBattles(battles: readonly Battle[]): Indexed {
  const index = new Map<string, number>();
  const id = (model: string) => {
    let i = index.get(model);
    if (i === undefined) {
      i = index.size;
      index.set(model, i);
    }
    return i;
  };
  const a = new Int32Array(battles.length);
  const b = new Int32Array(battles.length);
  const halfWinsOfA = new Uint8Array(battles.length);
  battles.forEach((battle, n) => {
    a[n] = id(battle.a);
    b[n] = id(battle.b);
    halfWinsOfA[n] = battle.outcome === 'a' ? 2 : battle.outcome === 'b' ? 0 : 1;
  });
  return { models: [...index.keys()], a, b, halfWinsOfA };
}

function addBattle(wins: Float64Array, k: number, data: Indexed, n: number): void {
  const i = data.a[n]!;
  const j = data.b[n]!;
  const h = data.halfWinsOfA[n]! / 2;
  wins[i * k + j]! += h;
  wins[j * k + i]! += 1 - h;
}

function logLikelihood(k: number, wins: Float64Array, prior: number, theta: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < k; i++) {
    const ti = theta[i]!;
    for (let j = i + 1; j < k; j++) {
      const wij = wins[i * k + j]!;
      const wji = wins[j * k + i]!;
      if (wij + wji === 0) continue;
      const tj = theta[j]!;
      sum += wij * ti + wji * tj - (wij + wji) * logAddExp(ti, tj);
    }
    sum += (prior / 2) * ti - prior * logAddExp(ti, 0);
  }
  return sum;
}

/** Solves A·x = g for a symmetric positive definite A (Cholesky, in place on a copy). */
function solveSpd(k: number, matrix: Float64Array, g: Float64Array): Float64Array {
  const l = new Float64Array(matrix);
  for (let j = 0; j < k; j++) {
    let d = l[j * k + j]!;
    for (let m = 0; m < j; m++) d -= l[j * k + m]! ** 2;
    // the prior keeps the diagonal above zero; a rounding slip must not become a NaN
    d = Math.sqrt(Math.max(d, 1e-300));
    l[j * k + j] = d;
    for (let i = j + 1; i < k; i++) {
      let s = l[i * k + j]!;
      for (let m = 0; m < j; m++) s -= l[i * k + m]! * l[j * k + m]!;
      l[i * k + j] = s / d;
    }
  }
  const y = new Float64Array(k);
  for (let i = 0; i < k; i++) {
    let s = g[i]!;
    for (let m = 0; m < i; m++) s -= l[i * k + m]! * y[m]!;
    y[i] = s / l[i * k + i]!;
  }
  const x = new Float64Array(k);
  for (let i = k - 1; i >= 0; i--) {
    let s = y[i]!;
    for (let m = i + 1; m < k; m++) s -= l[m * k + i]! * x[m]!;
    x[i] = s / l[i * k + i]!;
  }
  return x;
}

/** Newton ascent from `start`; returns uncentred strengths (the anchor is at 0). */
function newton(
  k: number,
  wins: Float64Array,
  prior: number,
  start: Float64Array,
  maxIterations: number,
  tolerance: number,
): { theta: Float64Array; iterations: number; converged: boolean } {
  let theta = new Float64Array(start);
  let current = logLikelihood(k, wins, prior, theta);
  const gradient = new Float64Array(k);
  const negHessian = new Float64Array(k * k);
  for (let iteration = 1; iteration <= maxIterations; iteration++) {
    gradient.fill(0);
    negHessian.fill(0);
    for (let i = 0; i < k; i++) {
      const si = sigmoid(theta[i]!);
      gradient[i]! += prior / 2 - prior * si;
      negHessian[i * k + i]! += prior * si * (1 - si);
      for (let j = i + 1; j < k; j++) {
        const wij = wins[i * k + j]!;
        const wji = wins[j * k + i]!;
        const n = wij + wji;
        if (n === 0) continue;
        const p = sigmoid(theta[i]! - theta[j]!);
        gradient[i]! += wij - n * p;
        gradient[j]! += wji - n * (1 - p);
        const w = n * p * (1 - p);
        negHessian[i * k + i]! += w;
        negHessian[j * k + j]! += w;
        negHessian[i * k + j]! -= w;
        negHessian[j * k + i]! -= w;
      }
    }
    const step = solveSpd(k, negHessian, gradient);
    let scale = 1;
    let next = theta;
    let value = current;
    // step halving: the objective is concave, so a short enough step always climbs
    for (let tries = 0; tries < 40; tries++) {
      next = theta.map((t, i) => t + scale * step[i]!);
      value = logLikelihood(k, wins, prior, next);
      if (value >= current - 1e-12 * Math.abs(current)) break;
      scale /= 2;
    }
    let moved = 0;
    for (let i = 0; i < k; i++) moved = Math.max(moved, Math.abs(next[i]! - theta[i]!));
    theta = next;
    current = value;
    if (moved < tolerance) return { theta, iterations: iteration, converged: true };
  }
  return { theta, iterations: maxIterations, converged: false };
}

function centred(theta: Float64Array): Float64Array {
  const mean = theta.reduce((s, t) => s + t, 0) / Math.max(theta.length, 1);
  return theta.map((t) => t - mean);
}

function fitIndexed(
  data: Indexed,
  options: Required<FitOptions>,
): { theta: Float64Array; iterations: number; converged: boolean } {
  const k = data.models.length;
  const wins = new Float64Array(k * k);
  for (let n = 0; n < data.a.length; n++) addBattle(wins, k, data, n);
  return newton(k, wins, options.prior, new Float64Array(k), options.maxIterations, options.tolerance);
}

/**
 * Battles grouped by (a, b, outcome): a resample only counts how often each group is drawn, so a draw
 * touches one small array instead of three as long as the battles (a bootstrap of 200 resamples of
 * 100,000 battles is 20 million draws; docs/benchmarks.md, "Arena ratings").
 */
interface Cells {
  /** The cell of each battle. */
  cellOf: Uint32Array;
  i: Int32Array;
  j: Int32Array;
  /** Half-wins of i: 2, 1 (a tie) or 0. */
  h: Uint8Array;
}

function cellsOf(data: Indexed): Cells {
  const k = data.models.length;
  const index = new Map<number, number>();
  const cellOf = new Uint32Array(data.a.length);
  const i: number[] = [];
  const j: number[] = [];
  const h: number[] = [];
  for (let n = 0; n < data.a.length; n++) {
    const key = (data.a[n]! * k + data.b[n]!) * 3 + data.halfWinsOfA[n]!;
    let cell = index.get(key);
    if (cell === undefined) {
      cell = i.length;
      index.set(key, cell);
      i.push(data.a[n]!);
      j.push(data.b[n]!);
      h.push(data.halfWinsOfA[n]!);
    }
    cellOf[n] = cell;
  }
  return { cellOf, i: Int32Array.from(i), j: Int32Array.from(j), h: Uint8Array.from(h) };
}

function withDefaults(options: FitOptions): Required<FitOptions> {
  const prior = options.prior ?? DEFAULT_PRIOR;
  if (!(prior > 0)) throw new RangeError('prior must be > 0');
  return { prior, maxIterations: options.maxIterations ?? 100, tolerance: options.tolerance ?? 1e-9 };
}

export function fitBradleyTerry(battles: readonly Battle[], options: FitOptions = {}): Fit {
  const data = indexBattles(battles);
  const fit = fitIndexed(data, withDefaults(options));
  return {
    models: data.models,
    strengths: centred(fit.theta),
    iterations: fit.iterations,
    converged: fit.converged,
  };
}

export interface RatingOptions extends FitOptions {
  /** Bootstrap resamples of the battles; 0: no intervals. */
  bootstrap?: number;
  seed?: number;
  /** Of the interval: 0.95 for 95%. */
  confidence?: number;
}

export interface Rating {
  model: string;
  /** Elo-like: 1000 + 400·log₁₀(e)·θ, θ centred over the models rated. */
  rating: number;
  /** The bootstrap percentile interval of `rating` (equal to it without a bootstrap). */
  lower: number;
  upper: number;
  /** 1 + how many models are better beyond doubt (their lower bound above this one's upper bound). */
  rank: number;
  battles: number;
  wins: number;
  losses: number;
  ties: number;
}

export interface Ratings {
  ratings: Rating[];
  battles: number;
  bootstrap: number;
  seed: number;
  prior: number;
  confidence: number;
}

export const DEFAULT_BOOTSTRAP = 200;

/**
 * What one bootstrap resample costs, in milliseconds on the reference machine (2 shared cores, Node 20;
 * bench/arena-ratings.ts): drawing the battles, then one Newton fit (a k×k system per step).
 */
export function resampleCostMs(battles: number, models: number): number {
  return battles * 2e-5 + models ** 2 * 5e-4 + models ** 3 * 5e-7;
}

/** The most resamples that fit in `budgetMs` on the event loop (at least 0). */
export function affordableBootstrap(battles: number, models: number, budgetMs: number): number {
  return Math.max(0, Math.floor(budgetMs / resampleCostMs(battles, models)));
}
export const DEFAULT_SEED = 1;

/** The q-quantile of sorted values, interpolated linearly (type 7, R's default). */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const h = (n - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, n - 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

/** Ranks shared where intervals overlap: 1 + the number of others whose lower bound beats my upper. */
export function sharedRanks<T extends { lower: number; upper: number }>(items: readonly T[]): number[] {
  return items.map((x) => 1 + items.filter((y) => y !== x && y.lower > x.upper).length);
}

/**
 * Ratings with bootstrap intervals: `bootstrap` resamples of the battles (drawn with replacement by a
 * seeded generator, so the same battles and seed give the same intervals), each fitted from the full
 * fit's strengths; the interval is the percentile interval of each model's centred rating.
 */
export function rateBattles(battles: readonly Battle[], options: RatingOptions = {}): Ratings {
  const fitOptions = withDefaults(options);
  const bootstrap = options.bootstrap ?? DEFAULT_BOOTSTRAP;
  const seed = options.seed ?? DEFAULT_SEED;
  const confidence = options.confidence ?? 0.95;
  if (!Number.isInteger(bootstrap) || bootstrap < 0) throw new RangeError('bootstrap must be an integer ≥ 0');
  if (!(confidence > 0 && confidence < 1)) throw new RangeError('confidence must be between 0 and 1');
  const data = indexBattles(battles);
  const k = data.models.length;
  const n = data.a.length;
  const full = fitIndexed(data, fitOptions);
  const point = centred(full.theta);

  const samples = Array.from({ length: k }, () => new Float64Array(bootstrap));
  if (n > 0 && bootstrap > 0) {
    const random = seededRandom(seed);
    const cells = cellsOf(data);
    const drawn = new Float64Array(cells.i.length);
    const wins = new Float64Array(k * k);
    for (let b = 0; b < bootstrap; b++) {
      drawn.fill(0);
      for (let r = 0; r < n; r++) drawn[cells.cellOf[Math.floor(random() * n)]!]!++;
      wins.fill(0);
      for (let c = 0; c < drawn.length; c++) {
        const times = drawn[c]!;
        if (times === 0) continue;
        const half = cells.h[c]! / 2;
        wins[cells.i[c]! * k + cells.j[c]!]! += times * half;
        wins[cells.j[c]! * k + cells.i[c]!]! += times * (1 - half);
      }
      const fit = newton(
        k,
        wins,
        fitOptions.prior,
        full.theta,
        fitOptions.maxIterations,
        fitOptions.tolerance,
      );
      const theta = centred(fit.theta);
      for (let i = 0; i < k; i++) samples[i]![b] = theta[i]!;
    }
  }

  const counts = data.models.map(() => ({ battles: 0, wins: 0, losses: 0, ties: 0 }));
  for (let r = 0; r < n; r++) {
    const a = counts[data.a[r]!]!;
    const b = counts[data.b[r]!]!;
    a.battles++;
    b.battles++;
    const h = data.halfWinsOfA[r]!;
    if (h === 1) {
      a.ties++;
      b.ties++;
    } else if (h === 2) {
      a.wins++;
      b.losses++;
    } else {
      b.wins++;
      a.losses++;
    }
  }

  const toRating = (theta: number) => RATING_CENTRE + RATING_SCALE * theta;
  const tail = (1 - confidence) / 2;
  const unranked = data.models.map((model, i) => {
    const rating = toRating(point[i]!);
    let lower = rating;
    let upper = rating;
    if (bootstrap > 0 && n > 0) {
      const sorted = samples[i]!.slice().sort();
      lower = toRating(quantileSorted(sorted, tail));
      upper = toRating(quantileSorted(sorted, 1 - tail));
    }
    return { model, rating, lower, upper, ...counts[i]! };
  });
  unranked.sort((x, y) => y.rating - x.rating || x.model.localeCompare(y.model));
  const ranks = sharedRanks(unranked);
  return {
    ratings: unranked.map((r, i) => ({ ...r, rank: ranks[i]! })),
    battles: n,
    bootstrap,
    seed,
    prior: fitOptions.prior,
    confidence,
  };
}
