import { addDays } from '../config/index.js'
import { esc, n } from './escape.js'
import type { ReportData, TopicView } from './model.js'

/**
 * Small inline SVG charts, written by hand: deterministic (same data, same bytes), no browser,
 * no scripts, no external resources. Every text node is escaped.
 */

const FONT = `font-family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif" font-size="11"`
const AXIS = '#6b7280'
const GRID = '#e5e7eb'

function svgOpen(w: number, h: number, title: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="${esc(title)}"><title>${esc(title)}</title>`
}

const dayIndex = (from: string, d: string) => Math.round((Date.parse(`${d}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000)

/** θ over the 12 weeks ending at as-of, with a ±SE band. null when there is no estimate. */
export function thetaChart(d: Pick<ReportData, 'theta' | 'asOf'>): string | null {
  const pts = d.theta
  if (pts.length === 0) return null
  const W = 560, H = 200, L = 40, R = 12, T = 12, B = 28
  const from = addDays(d.asOf, -83)
  const span = 83
  const lo = Math.min(...pts.map((p) => p.theta - (p.se ?? 0)))
  const hi = Math.max(...pts.map((p) => p.theta + (p.se ?? 0)))
  const yMin = Math.floor(Math.min(lo, -1) * 2) / 2
  const yMax = Math.ceil(Math.max(hi, 1) * 2) / 2
  const x = (date: string) => L + (dayIndex(from, date) / span) * (W - L - R)
  const y = (v: number) => T + ((yMax - v) / (yMax - yMin)) * (H - T - B)
  let s = svgOpen(W, H, 'Ability (θ) trend with ±1 standard error band')
  for (let v = Math.ceil(yMin); v <= yMax; v++) {
    s += `<line x1="${L}" y1="${n(y(v))}" x2="${W - R}" y2="${n(y(v))}" stroke="${v === 0 ? AXIS : GRID}" stroke-width="1"/>`
    s += `<text x="${L - 6}" y="${n(y(v) + 4)}" text-anchor="end" fill="${AXIS}" ${FONT}>${v}</text>`
  }
  for (let w = 0; w <= 12; w += 4) {
    const date = addDays(from, w * 7)
    s += `<text x="${n(x(date))}" y="${H - 8}" text-anchor="${w === 0 ? 'start' : w === 12 ? 'end' : 'middle'}" fill="${AXIS}" ${FONT}>${esc(date.slice(5))}</text>`
  }
  const withSe = pts.filter((p) => p.se !== null)
  if (withSe.length >= 2) {
    const upper = withSe.map((p) => `${n(x(p.date))},${n(y(p.theta + p.se!))}`)
    const lower = [...withSe].reverse().map((p) => `${n(x(p.date))},${n(y(p.theta - p.se!))}`)
    s += `<polygon points="${[...upper, ...lower].join(' ')}" fill="#93c5fd" fill-opacity="0.45" stroke="none"/>`
  }
  for (const p of withSe) s += `<line x1="${n(x(p.date))}" y1="${n(y(p.theta + p.se!))}" x2="${n(x(p.date))}" y2="${n(y(p.theta - p.se!))}" stroke="#60a5fa" stroke-width="1"/>`
  if (pts.length >= 2) s += `<polyline points="${pts.map((p) => `${n(x(p.date))},${n(y(p.theta))}`).join(' ')}" fill="none" stroke="#1d4ed8" stroke-width="2"/>`
  for (const p of pts) s += `<circle cx="${n(x(p.date))}" cy="${n(y(p.theta))}" r="3" fill="#1d4ed8"><title>${esc(`${p.date}: θ ${p.theta.toFixed(2)}${p.se !== null ? ` ± ${p.se.toFixed(2)}` : ''}`)}</title></circle>`
  return s + '</svg>'
}

/** Attempts per day over 28 days (correct ones darker); the report's week is shaded. */
export function dailyChart(d: Pick<ReportData, 'daily'>): string {
  const W = 560, H = 150, L = 32, R = 8, T = 10, B = 24
  const days = d.daily
  const max = Math.max(4, ...days.map((x) => x.attempts))
  const step = (W - L - R) / Math.max(1, days.length)
  const y = (v: number) => T + (1 - v / max) * (H - T - B)
  let s = svgOpen(W, H, 'Attempts per day over the last 4 weeks (darker: correct)')
  if (days.length >= 7) s += `<rect x="${n(L + (days.length - 7) * step)}" y="${T}" width="${n(7 * step)}" height="${H - T - B}" fill="#fef3c7"/>`
  s += `<line x1="${L}" y1="${n(y(0))}" x2="${W - R}" y2="${n(y(0))}" stroke="${AXIS}"/>`
  s += `<text x="${L - 4}" y="${n(y(max) + 4)}" text-anchor="end" fill="${AXIS}" ${FONT}>${max}</text><text x="${L - 4}" y="${n(y(0))}" text-anchor="end" fill="${AXIS}" ${FONT}>0</text>`
  days.forEach((x, i) => {
    const bx = L + i * step + 1
    const bw = Math.max(1, step - 2)
    if (x.attempts > 0) {
      s += `<rect x="${n(bx)}" y="${n(y(x.attempts))}" width="${n(bw)}" height="${n(y(0) - y(x.attempts))}" fill="#a5b4fc"><title>${esc(`${x.date}: ${x.attempts} attempts, ${x.correct} correct`)}</title></rect>`
      if (x.correct > 0) s += `<rect x="${n(bx)}" y="${n(y(x.correct))}" width="${n(bw)}" height="${n(y(0) - y(x.correct))}" fill="#4338ca"/>`
    }
    if (i % 7 === 0 || i === days.length - 1) s += `<text x="${n(bx + bw / 2)}" y="${H - 8}" text-anchor="${i === days.length - 1 ? 'end' : 'middle'}" fill="${AXIS}" ${FONT}>${esc(x.date.slice(5))}</text>`
  })
  return s + '</svg>'
}

/** Accuracy per topic (28 days), most practised first, at most `max` topics. */
export function topicChart(topics: TopicView[], max = 10): string | null {
  const ts = topics.slice(0, max)
  if (ts.length === 0) return null
  const W = 560, rowH = 22, L = 150, R = 70, T = 6
  const H = T + ts.length * rowH + 6
  const x = (v: number) => L + v * (W - L - R)
  let s = svgOpen(W, H, 'Accuracy per topic over the last 4 weeks')
  ts.forEach((t, i) => {
    const yy = T + i * rowH
    const label = t.topicId.length > 22 ? t.topicId.slice(0, 21) + '…' : t.topicId
    const col = t.accuracy < 0.6 ? '#dc2626' : t.accuracy < 0.8 ? '#d97706' : '#16a34a'
    s += `<text x="${L - 8}" y="${yy + 15}" text-anchor="end" fill="#111827" ${FONT}>${esc(label)}</text>`
    s += `<rect x="${L}" y="${yy + 4}" width="${n(x(1) - L)}" height="14" fill="${GRID}"/>`
    s += `<rect x="${L}" y="${yy + 4}" width="${n(x(t.accuracy) - L)}" height="14" fill="${col}"><title>${esc(`${t.topicId}: ${t.correct}/${t.attempts} correct`)}</title></rect>`
    s += `<text x="${n(x(1) + 6)}" y="${yy + 15}" fill="#111827" ${FONT}>${Math.round(t.accuracy * 100)}% (${t.attempts})</text>`
  })
  return s + '</svg>'
}

/** Goal probability as a half-circle gauge, its 95% interval as a band on the arc. */
export function goalGauge(g: ReportData['goal']): string {
  const W = 220, H = 130, cx = 110, cy = 110, r = 90
  const pt = (p: number, rad = r) => {
    const a = Math.PI * (1 - Math.min(1, Math.max(0, p)))
    return [cx + rad * Math.cos(a), cy - rad * Math.sin(a)] as const
  }
  const arc = (p0: number, p1: number, rad: number) => {
    const [x0, y0] = pt(p0, rad)
    const [x1, y1] = pt(p1, rad)
    return `M ${n(x0)} ${n(y0)} A ${rad} ${rad} 0 0 1 ${n(x1)} ${n(y1)}`
  }
  let s = svgOpen(W, H, `Goal probability gauge${g.P === null ? ': no estimate' : ''}`)
  s += `<path d="${arc(0, 1, r)}" fill="none" stroke="${GRID}" stroke-width="16"/>`
  if (g.P !== null) {
    if (g.ci) s += `<path d="${arc(g.ci[0], g.ci[1], r)}" fill="none" stroke="#93c5fd" stroke-width="16"><title>${esc(`95% interval ${Math.round(g.ci[0] * 100)}–${Math.round(g.ci[1] * 100)}%`)}</title></path>`
    const [nx, ny] = pt(g.P, r + 4)
    s += `<line x1="${cx}" y1="${cy}" x2="${n(nx)}" y2="${n(ny)}" stroke="#1d4ed8" stroke-width="3"/><circle cx="${cx}" cy="${cy}" r="5" fill="#1d4ed8"/>`
    s += `<text x="${cx}" y="${cy - 24}" text-anchor="middle" fill="#111827" font-family="system-ui, sans-serif" font-size="20" font-weight="600">${Math.round(g.P * 100)}%</text>`
  } else {
    s += `<text x="${cx}" y="${cy - 24}" text-anchor="middle" fill="${AXIS}" font-family="system-ui, sans-serif" font-size="14">no estimate</text>`
  }
  s += `<text x="${cx - r}" y="${cy + 16}" text-anchor="middle" fill="${AXIS}" ${FONT}>0%</text><text x="${cx + r}" y="${cy + 16}" text-anchor="middle" fill="${AXIS}" ${FONT}>100%</text>`
  return s + '</svg>'
}

/** Churn risk on a 0–1 bar with the band limits at 0.3 and 0.7. */
export function churnBar(c: ReportData['churn']): string {
  const W = 220, H = 46, L = 10, R = 10
  const x = (v: number) => L + v * (W - L - R)
  let s = svgOpen(W, H, `Churn risk${c.band ? `: ${c.band}` : ': no data'}`)
  s += `<rect x="${n(x(0))}" y="8" width="${n(x(0.3) - x(0))}" height="12" fill="#bbf7d0"/><rect x="${n(x(0.3))}" y="8" width="${n(x(0.7) - x(0.3))}" height="12" fill="#fde68a"/><rect x="${n(x(0.7))}" y="8" width="${n(x(1) - x(0.7))}" height="12" fill="#fecaca"/>`
  if (c.S !== null) s += `<polygon points="${n(x(c.S) - 6)},2 ${n(x(c.S) + 6)},2 ${n(x(c.S))},12" fill="#111827"/>`
  s += `<text x="${n(x(0))}" y="36" fill="${AXIS}" ${FONT}>low</text><text x="${n(x(0.5))}" y="36" text-anchor="middle" fill="${AXIS}" ${FONT}>medium</text><text x="${n(x(1))}" y="36" text-anchor="end" fill="${AXIS}" ${FONT}>high</text>`
  return s + '</svg>'
}
