import type {
  Leaderboard,
  LeaderboardArena,
  LeaderboardRound,
  LeaderboardTeam,
} from '../../evaluation/rounds/leaderboard.ts';
import type { Estimate } from '../../evaluation/rounds/statistics.ts';
import { kstMinute } from '../../kst.ts';
import { escapeXml as esc, intervalChart, lineChart } from './svg-charts.ts';

/**
 * The public leaderboard as one server-rendered page (Korean first, English second): every published
 * round, newest first, with each team's weighted score and interval, percent of its declared target,
 * status and the reason for it; charts of both across rounds; and the public arenas' ratings. No
 * script: the page is complete as sent (its Content-Security-Policy allows none).
 */

const num = (n: number | null | undefined, digits = 1) => (typeof n === 'number' ? n.toFixed(digits) : '—');
const withInterval = (e: Estimate | null) =>
  e ? `${num(e.value)} <small>[${num(e.lower)}–${num(e.upper)}]</small>` : '—';

// the hub's own KST arithmetic, not an Intl formatter with a time zone: that reads ≈ 5 MB of the node
// binary's ICU data, resident from then on
const kst = (iso: string | null) => (iso ? `${kstMinute(Date.parse(iso))} KST` : '—');

const STATUS: Record<string, [string, string]> = {
  survives: ['생존', 'Survives'],
  eliminated: ['탈락', 'Eliminated'],
  disqualified: ['실격', 'Disqualified'],
  pending: ['미정', 'Pending'],
};
const DECIDED: Record<string, string> = {
  gate: '관문 / gate',
  interval: '신뢰구간으로 구분 / separated by its interval',
  'tie-break': '사전 동점 기준 / declared tie-break',
  score: '점수 / score',
  pending: '—',
};

function teamRow(round: LeaderboardRound, t: LeaderboardTeam): string {
  const [ko, en] = STATUS[t.status] ?? [t.status, t.status];
  const gates = t.failedGates
    .map(
      (g) =>
        `<div class="gate">${esc(g.name)}: ${esc(g.reason)} <small>(근거 / evidence: ${esc(g.evidence)})</small></div>`,
    )
    .join('');
  const axes = round.axes
    .map((a) => {
      const score = t.axes.find((x) => x.axisId === a.id)?.score ?? null;
      return `<td class="num">${withInterval(score)}</td>`;
    })
    .join('');
  const threshold =
    t.reachesThreshold === null
      ? '—'
      : t.reachesThreshold
        ? '<span class="yes">✓ 달성</span>'
        : '<span class="no">✗ 미달</span>';
  return `<tr class="${esc(t.status)}">
  <td class="num">${t.rank ?? '—'}</td>
  <th scope="row">${esc(t.name)}${t.entry === 'wildcard' ? ' <span class="tag">와일드카드 / wildcard</span>' : ''}</th>
  <td><code>${esc(t.targetModel)}</code></td>
  <td class="num"><strong>${withInterval(t.overall)}</strong></td>
  <td class="num">${withInterval(t.percentOfReference)}</td>
  <td class="mark">${threshold}</td>
  ${axes}
  <td><span class="status">${ko} <small>${en}</small></span><div><small>${esc(DECIDED[t.decidedBy] ?? t.decidedBy)}</small></div>${gates}</td>
</tr>`;
}

function roundSection(round: LeaderboardRound): string {
  const axesHead = round.axes
    .map((a) => `<th scope="col">${esc(a.name)} <small>${a.weight}%</small></th>`)
    .join('');
  const qualified = round.teams.filter((t) => t.overall !== null);
  const chart =
    qualified.length > 0
      ? intervalChart(
          `round-${round.id}`,
          `${round.name}: 종합 점수와 95% 신뢰구간 / weighted score with 95% interval`,
          `${round.name}의 팀별 종합 점수. 구간이 겹치는 팀은 점수로 구분되지 않습니다. / Teams whose intervals overlap are not separated by their scores.`,
          qualified.map((t) => ({
            label: t.name,
            value: t.overall!.value,
            lower: t.overall!.lower,
            upper: t.overall!.upper,
            muted: t.status !== 'survives',
          })),
          '',
        )
      : '';
  const tie =
    round.tieGroup.length > 0
      ? `<p>동점 처리 / tie-break (${round.tieBreak.map(esc).join(' → ')}): ${round.tieGroup
          .map((id) => esc(round.teams.find((t) => t.organizationId === id)?.name ?? id))
          .join(', ')}</p>`
      : '';
  return `<section class="round" id="${esc(round.id)}">
<h2>${round.sequence}차 · ${esc(round.name)}${round.programme ? ` <small>${esc(round.programme)}</small>` : ''}</h2>
<p class="meta">공개 / published ${kst(round.publishedAt)} · 생존 / survivors ${round.survivors} · 기준 / threshold ${num(round.threshold, 0)}% · 축 / axes ${round.axes.map((a) => `${esc(a.name)} ${a.weight}`).join(' · ')}</p>
<div class="scroll"><table>
<thead><tr><th scope="col">순위<br><small>Rank</small></th><th scope="col">팀<br><small>Team</small></th><th scope="col">목표 모델<br><small>Target</small></th><th scope="col">종합 점수 [95%]<br><small>Weighted score</small></th><th scope="col">목표 대비 %<br><small>% of target</small></th><th scope="col">${num(round.threshold, 0)}%</th>${axesHead}<th scope="col">결과<br><small>Status</small></th></tr></thead>
<tbody>
${round.teams.map((t) => teamRow(round, t)).join('\n')}
</tbody></table></div>
${tie}
<figure>${chart}</figure>
</section>`;
}

function trendCharts(board: Leaderboard): string {
  if (board.rounds.length === 0) return '';
  const labels = board.rounds.map((r) => `${r.sequence}차`);
  const values = (pick: 'overall' | 'percentOfReference') =>
    board.series.map((s) => ({
      label: s.name,
      values: board.rounds.map((r) => s.points.find((p) => p.roundId === r.id)?.[pick] ?? null),
    }));
  const percents = board.series
    .flatMap((s) => s.points.map((p) => p.percentOfReference))
    .filter((v): v is number => v !== null);
  const threshold = board.rounds.at(-1)!.threshold;
  const yMin = Math.max(0, Math.floor((Math.min(threshold, ...percents) - 10) / 10) * 10);
  const yMax = Math.ceil((Math.max(110, ...percents) + 5) / 10) * 10;
  return `<section id="trends"><h2>차수별 추이 <small>Across rounds</small></h2>
<figure>${lineChart({
    id: 'trend-score',
    title: '종합 점수 / Weighted score',
    description: '차수별 팀의 종합 점수(0–100). / Each team’s weighted score by round.',
    xLabels: labels,
    series: values('overall'),
    yMin: 0,
    yMax: 100,
    unit: '',
  })}<figcaption>종합 점수 / Weighted score (0–100)</figcaption></figure>
<figure>${lineChart({
    id: 'trend-reference',
    title: '목표 모델 대비 % / Percent of the declared target',
    description: `팀이 선언한 글로벌 목표 모델 점수 대비 벤치마크 비율; 점선은 기준 ${threshold}%. / Benchmark percent of each team's declared target model; the dashed line is the ${threshold}% threshold.`,
    xLabels: labels,
    series: values('percentOfReference'),
    yMin,
    yMax,
    unit: '%',
    guide: { value: threshold, label: `${threshold}% 기준 / threshold` },
  })}<figcaption>목표 모델 대비 % / Percent of the declared target</figcaption></figure>
</section>`;
}

function arenaSection(arena: LeaderboardArena): string {
  const rows = arena.ratings
    .map(
      (r) =>
        `<tr><td class="num">${r.rank}</td><th scope="row">${esc(r.model)}</th><td class="num"><strong>${num(r.rating, 0)}</strong> <small>[${num(r.lower, 0)}–${num(r.upper, 0)}]</small></td><td class="num">${r.battles}</td><td class="num">${r.wins} / ${r.losses} / ${r.ties}</td></tr>`,
    )
    .join('\n');
  const chart =
    arena.ratings.length > 0
      ? intervalChart(
          `arena-${arena.id}`,
          `${arena.name}: Bradley–Terry 점수와 95% 구간 / ratings with 95% intervals`,
          '구간이 겹치는 모델은 같은 순위를 나눕니다. / Models whose intervals overlap share a rank.',
          arena.ratings.map((r) => ({ label: r.model, value: r.rating, lower: r.lower, upper: r.upper })),
          '',
        )
      : '';
  return `<section class="arena" id="${esc(arena.id)}">
<h3>${esc(arena.name)} <small>${arena.judgeModel ? `심판 / judge: ${esc(arena.judgeModel)}` : '사람 투표 / people’s votes'} · ${arena.battles} 대결 / battles · bootstrap ${arena.bootstrap}</small></h3>
${arena.description ? `<p>${esc(arena.description)}</p>` : ''}
${rows ? `<div class="scroll"><table><thead><tr><th scope="col">순위<br><small>Rank</small></th><th scope="col">모델<br><small>Model</small></th><th scope="col">점수 [95%]<br><small>Rating</small></th><th scope="col">대결<br><small>Battles</small></th><th scope="col">승 / 패 / 무<br><small>W / L / T</small></th></tr></thead><tbody>${rows}</tbody></table></div><figure>${chart}</figure>` : '<p>아직 대결이 없습니다. / No battles yet.</p>'}
</section>`;
}

const STYLE = `body{font-family:"Noto Sans KR","NanumGothic","Apple SD Gothic Neo","Malgun Gothic",system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:1rem 1.25rem;color:#1b1b1b;line-height:1.5}
h1{font-size:1.6rem;margin:.2rem 0}h2{margin-top:2.2rem;border-bottom:2px solid #1f5fbf;padding-bottom:.2rem}
small{color:#555;font-weight:normal}.meta{color:#444}table{border-collapse:collapse;width:100%;font-size:.92rem}
th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top}thead th{background:#f3f6fb}
td.num{text-align:right;white-space:nowrap}td.mark{white-space:nowrap}.scroll{overflow-x:auto}tr.eliminated,tr.disqualified{color:#666}
tr.disqualified th{text-decoration:line-through}.yes{color:#27864a}.no{color:#c0392b}.gate{color:#c0392b;font-size:.85rem}
.tag{font-size:.75rem;background:#fff3cd;border:1px solid #e0c36a;border-radius:3px;padding:0 .3rem}
figure{margin:1rem 0}figcaption{font-size:.85rem;color:#555}code{font-size:.85rem}`;

export function renderLeaderboardPage(board: Leaderboard): string {
  const rounds = [...board.rounds].reverse();
  const body =
    rounds.length === 0
      ? '<p>아직 공개된 평가 차수가 없습니다. / No evaluation round has been published yet.</p>'
      : rounds.map(roundSection).join('\n');
  return `<!doctype html>
<html lang="ko">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>평가 리더보드 · K-AI Hub / Evaluation leaderboard</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>평가 리더보드 <small>Evaluation leaderboard</small></h1>
<p>운영기관이 공개한 평가 차수의 결과입니다. 각 팀의 벤치마크 점수는 그 팀이 선언한 글로벌 목표 모델 대비 비율이며, 점수의 95% 신뢰구간이 겹쳐 구분되지 않는 팀은 사전에 정한 동점 처리 기준으로 가립니다.<br>
<small>Results of the evaluation rounds the operator has published. Each team's benchmark score is a percentage of the global model it declared as its target; teams whose 95% intervals overlap are separated by the tie-break the round declared in advance.</small></p>
<p class="meta">생성 / generated ${kst(board.generatedAt)} · <a href="/leaderboard.json">JSON</a></p>
</header>
<main>
${body}
${trendCharts(board)}
${board.arenas.length > 0 ? `<section id="arenas"><h2>아레나 <small>Arenas (Bradley–Terry)</small></h2>${board.arenas.map(arenaSection).join('\n')}</section>` : ''}
</main>
</body>
</html>
`;
}
