import type { ChurnBand, KpiView } from './model.js'

/**
 * Plain-language labels of the KPIs (the predecessor mislabelled them), one line each on what the
 * number means. The formulas are those of compute-kpis (SPEC 2, "KPI definitions").
 */
export const KPI_LABELS: Record<KpiView['key'], { label: string; explanation: string; range: [number, number]; kind: 'signed' | 'share' }> = {
  I_t: { label: 'Improvement', explanation: 'Change in ability (or accuracy) over the last 14 days compared with the 14 days before; above 0 means getting better.', range: [-1, 1], kind: 'signed' },
  E_t: { label: 'Time efficiency', explanation: 'How much faster correct answers came in the last 4 weeks than in the 4 weeks before (0 = not faster).', range: [0, 1], kind: 'share' },
  R_t: { label: 'Recovery of past mistakes', explanation: 'Share answered correctly now among questions that were answered wrong 4–8 weeks ago.', range: [0, 1], kind: 'share' },
  A_t: { label: 'Engagement', explanation: 'Regularity and depth of practice over the last 4 weeks: sessions, gaps between them, hints, time spent.', range: [0, 1], kind: 'share' },
  P: { label: 'Goal probability', explanation: 'Estimated chance that the learner\'s ability is at or above their goal level.', range: [0, 1], kind: 'share' },
  S: { label: 'Churn risk', explanation: 'Risk of dropping out, from days since the last session and the rhythm of recent sessions (higher is worse).', range: [0, 1], kind: 'share' },
}

export const KPI_ORDER: KpiView['key'][] = ['I_t', 'E_t', 'R_t', 'A_t', 'P', 'S']

/** Churn band: low < 0.3 ≤ medium < 0.7 ≤ high (SPEC 4). */
export function churnBand(s: number | null): ChurnBand | null {
  if (s === null || !Number.isFinite(s)) return null
  return s < 0.3 ? 'low' : s < 0.7 ? 'medium' : 'high'
}

export function formatKpi(key: KpiView['key'], v: number | null): string {
  if (v === null || !Number.isFinite(v)) return '—'
  if (KPI_LABELS[key].kind === 'signed') return (v > 0 ? '+' : v < 0 ? '−' : '') + Math.abs(v).toFixed(2)
  return `${Math.round(v * 100)}%`
}

export function pct(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '—' : `${Math.round(v * 100)}%`
}

/** ISO week label (e.g. 2026-W47) of a Monday, UTC. */
export function isoWeekLabel(weekStart: string): string {
  const d = new Date(`${weekStart}T00:00:00Z`)
  // The ISO year is the year of the week's Thursday.
  const thu = new Date(d.getTime() + 3 * 86_400_000)
  const year = thu.getUTCFullYear()
  const jan4 = new Date(Date.UTC(year, 0, 4))
  const week1Monday = jan4.getTime() - ((jan4.getUTCDay() + 6) % 7) * 86_400_000
  const week = Math.floor((d.getTime() - week1Monday) / (7 * 86_400_000)) + 1
  return `${year}-W${String(week).padStart(2, '0')}`
}
