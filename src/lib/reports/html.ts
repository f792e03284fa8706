import { esc } from './escape.js'
import { pct } from './labels.js'
import type { ReportData } from './model.js'
import { churnBar, dailyChart, goalGauge, thetaChart, topicChart } from './svg.js'

const CSS = `
*{box-sizing:border-box}body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#111827;margin:0;background:#f9fafb}
main{max-width:860px;margin:0 auto;padding:24px}h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
.meta{color:#6b7280;font-size:13px}.cards{display:flex;gap:16px;flex-wrap:wrap}.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:12px 16px;flex:1;min-width:240px}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px}th,td{border-bottom:1px solid #e5e7eb;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#f3f4f6;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}.expl{color:#4b5563}
.band{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600}.band.low{background:#dcfce7;color:#166534}.band.medium{background:#fef3c7;color:#92400e}.band.high{background:#fee2e2;color:#991b1b}
.empty{color:#6b7280;font-style:italic}svg{max-width:100%;height:auto}ul.recs li{margin:4px 0}footer{color:#9ca3af;font-size:11px;margin-top:32px}
@media print{body{background:#fff}main{padding:0}.card{break-inside:avoid}h2{break-after:avoid}}
@page{size:A4;margin:14mm}`

/**
 * The built-in renderer: one self-contained HTML file (inline CSS and SVG, no script, no external
 * resource, a CSP that forbids both), so it opens offline and prints to PDF as is. Deterministic:
 * the same data gives the same bytes (no generation timestamp inside; report_artifacts has it).
 */
export function renderHtml(d: ReportData): string {
  const kpiRows = d.kpis
    .map((k) => `<tr><th scope="row">${esc(k.label)}</th><td class="num">${esc(k.display)}</td><td class="expl">${esc(k.explanation)}</td></tr>`)
    .join('')
  const theta = thetaChart(d)
  const topics = topicChart(d.topics)
  const last = d.theta[d.theta.length - 1]
  const interval = d.goal.ci ? `95% interval ${pct(d.goal.ci[0])}–${pct(d.goal.ci[1])}` : 'no interval (METRICS_USE_BAYESIAN off)'
  const topicRows = d.topics
    .map((t) => `<tr><td>${esc(t.topicId)}</td><td class="num">${t.attempts}</td><td class="num">${pct(t.accuracy)}</td><td class="num">${t.weekAttempts}</td><td class="num">${t.weekAttempts ? pct(t.weekCorrect / t.weekAttempts) : '—'}</td></tr>`)
    .join('')
  const goalRows = d.goals
    .map((g) => `<tr><td>${esc(g.topicId)}</td><td class="num">${g.targetLevel === null ? '—' : esc(g.targetLevel.toFixed(2))}</td><td class="num">${g.priority ?? '—'}</td></tr>`)
    .join('')
  const weekTotal = d.daily.slice(-7).reduce((s, x) => s + x.attempts, 0)
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="generator" content="seedops generate-report">
<title>Weekly report ${esc(d.isoWeek)} · ${esc(d.userId)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<header>
<h1>Weekly learning report</h1>
<div class="meta">Learner <strong id="user">${esc(d.userId)}</strong> · ISO week ${esc(d.isoWeek)} (${esc(d.weekStart)} to ${esc(d.asOf)}) · data as of ${esc(d.asOf)}</div>
</header>
${d.hasKpiRow ? '' : `<p class="empty">No KPIs were computed for this learner and week (no attempt in the KPI lookback): run seedops run compute-kpis --date ${esc(d.asOf)}.</p>`}
<section class="cards">
<div class="card"><h2>Goal probability</h2>${goalGauge(d.goal)}<div class="meta">${d.goal.P === null ? 'No ability estimate or goal to compare with yet.' : `${esc(interval)}${d.goal.target !== null ? ` · goal level ${esc(d.goal.target.toFixed(2))}` : ''}`}</div></div>
<div class="card"><h2>Churn risk</h2>${churnBar(d.churn)}<div>${d.churn.band ? `<span class="band ${d.churn.band}">${d.churn.band}</span> ${pct(d.churn.S)}` : '<span class="empty">no sessions in the last 8 weeks</span>'}</div><div class="meta">low &lt; 30% ≤ medium &lt; 70% ≤ high</div></div>
</section>
<h2>Key indicators</h2>
<table class="kpis"><thead><tr><th>Indicator</th><th>This week</th><th>What it means</th></tr></thead><tbody>${kpiRows}</tbody></table>
<h2>Ability trend</h2>
${theta ? `${theta}<div class="meta">Latest estimate ${esc(last!.theta.toFixed(2))}${last!.se !== null ? ` ± ${esc(last!.se.toFixed(2))}` : ''} on ${esc(last!.date)}; band: ±1 standard error.</div>` : '<p class="empty">No ability estimates yet.</p>'}
<h2>Practice</h2>
${dailyChart(d)}
<div class="meta">${weekTotal} attempts this week (shaded), ${d.daily.reduce((s, x) => s + x.attempts, 0)} in the last 4 weeks.</div>
<h2>Topics</h2>
${topics ?? '<p class="empty">No attempts in the last 4 weeks.</p>'}
${topicRows ? `<table class="topics"><thead><tr><th>Topic</th><th>Attempts (4 wk)</th><th>Accuracy (4 wk)</th><th>Attempts (week)</th><th>Accuracy (week)</th></tr></thead><tbody>${topicRows}</tbody></table>` : ''}
<h2>Goals</h2>
${goalRows ? `<table class="goals"><thead><tr><th>Topic</th><th>Target level</th><th>Priority</th></tr></thead><tbody>${goalRows}</tbody></table>` : '<p class="empty">No goals set.</p>'}
<h2>Recommendations</h2>
<ul class="recs">${d.recommendations.map((r) => `<li data-kind="${esc(r.kind)}">${esc(r.text)}</li>`).join('')}</ul>
<footer>seedops weekly report · KPIs from weekly_kpi, ability from seedops_ability_history, activity from the attempt read model.</footer>
</main>
</body>
</html>
`
}
