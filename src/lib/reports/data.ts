import type pg from 'pg'
import { addDays, utcDayStart } from '../config/index.js'
import { churnBand, formatKpi, isoWeekLabel, KPI_LABELS, KPI_ORDER } from './labels.js'
import type { KpiView, ReportData, TopicView } from './model.js'
import { recommend, type RecommendOptions } from './recommend.js'
import { ACTIVITY, GOALS, KPIS, REVISIT, THETA } from './sql.js'

type Q = Pick<pg.PoolClient, 'query'>

export interface GatherOptions extends Partial<RecommendOptions> {
  weekStart: string
  /** Items to revisit per user. */
  revisitLimit?: number
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null)
const toDate = (v: unknown): string => (v instanceof Date ? v.toISOString().slice(0, 10) : String(v).slice(0, 10))

/**
 * The data of the weekly reports of a batch of users, in five set-based queries (KPIs, θ history,
 * activity by topic and by day, items to revisit, goals), whatever the batch size.
 */
export async function gatherReports(q: Q, users: string[], o: GatherOptions): Promise<ReportData[]> {
  const weekStart = o.weekStart
  const asOf = addDays(weekStart, 6)
  const end = utcDayStart(addDays(asOf, 1))
  const from28 = utcDayStart(addDays(asOf, -27))
  const from84 = utcDayStart(addDays(asOf, -83))

  const [kpis, theta, activity, revisit, goals] = [
    await q.query<{ user_id: string; kpis: Record<string, unknown> }>(KPIS, [users, weekStart]),
    await q.query<{ user_id: string; date: string | Date; theta: number; se: number | null }>(THETA, [users, from84, end]),
    await q.query<{ user_id: string; topic_id: string | null; day: string | Date | null; by_day: number; attempts: number; correct: number; week_attempts: number; week_correct: number }>(
      ACTIVITY,
      [users, from28, end, utcDayStart(weekStart)],
    ),
    await q.query<{ user_id: string; item_id: string; topic_id: string | null; completed_at: Date; wrong: number }>(REVISIT, [users, from28, end, o.revisitLimit ?? 5]),
    await q.query<{ user_id: string; topic_id: string; target_level: number | null; priority: number | null }>(GOALS, [users]),
  ]

  const by = <T extends { user_id: string }>(rows: T[]) => {
    const m = new Map<string, T[]>()
    for (const r of rows) {
      const l = m.get(r.user_id)
      if (l) l.push(r)
      else m.set(r.user_id, [r])
    }
    return m
  }
  const kpiBy = new Map(kpis.rows.map((r) => [r.user_id, r.kpis ?? {}]))
  const thetaBy = by(theta.rows)
  const actBy = by(activity.rows)
  const revisitBy = by(revisit.rows)
  const goalsBy = by(goals.rows)
  const days = Array.from({ length: 28 }, (_, i) => addDays(asOf, i - 27))

  return users.map((userId) => {
    const k = kpiBy.get(userId)
    const kv: KpiView[] = KPI_ORDER.map((key) => {
      const value = num(k?.[key])
      return { key, label: KPI_LABELS[key].label, explanation: KPI_LABELS[key].explanation, value, display: formatKpi(key, value), range: KPI_LABELS[key].range }
    })
    const ciRaw = k?.P_ci
    const ci = Array.isArray(ciRaw) && ciRaw.length === 2 && num(ciRaw[0]) !== null && num(ciRaw[1]) !== null ? ([num(ciRaw[0])!, num(ciRaw[1])!] as [number, number]) : null
    const S = num(k?.S)
    const act = actBy.get(userId) ?? []
    const topics: TopicView[] = act
      .filter((r) => r.by_day === 0 && r.topic_id !== null)
      .map((r) => ({ topicId: r.topic_id!, attempts: r.attempts, correct: r.correct, accuracy: r.attempts ? r.correct / r.attempts : 0, weekAttempts: r.week_attempts, weekCorrect: r.week_correct }))
      .sort((a, b) => b.attempts - a.attempts || (a.topicId < b.topicId ? -1 : 1))
    const perDay = new Map(act.filter((r) => r.by_day === 1 && r.day !== null).map((r) => [toDate(r.day), r]))
    const data: ReportData = {
      userId,
      weekStart,
      isoWeek: isoWeekLabel(weekStart),
      asOf,
      kpis: kv,
      goal: { P: num(k?.P), ci, target: num(k?.P_target), sigma: num(k?.sigma) },
      churn: { S, band: churnBand(S) },
      theta: (thetaBy.get(userId) ?? []).map((r) => ({ date: toDate(r.date), theta: r.theta, se: num(r.se) })),
      topics,
      daily: days.map((d) => ({ date: d, attempts: perDay.get(d)?.attempts ?? 0, correct: perDay.get(d)?.correct ?? 0 })),
      goals: (goalsBy.get(userId) ?? []).map((g) => ({ topicId: g.topic_id, targetLevel: num(g.target_level), priority: num(g.priority) })),
      revisit: (revisitBy.get(userId) ?? []).map((r) => ({ itemId: r.item_id, topicId: r.topic_id, lastWrongAt: new Date(r.completed_at).toISOString().slice(0, 10), wrongCount: r.wrong })),
      recommendations: [],
      hasKpiRow: k !== undefined,
    }
    data.recommendations = recommend(data, o)
    return data
  })
}
