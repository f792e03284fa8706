/** Everything one weekly report shows, gathered set-based for a batch of users (./data.ts). */
export interface ReportData {
  userId: string
  /** ISO week: Monday, its label (2026-W47) and as-of (Sunday). */
  weekStart: string
  isoWeek: string
  asOf: string
  kpis: KpiView[]
  /** Goal probability with its interval (present only with METRICS_USE_BAYESIAN). */
  goal: { P: number | null; ci: [number, number] | null; target: number | null; sigma: number | null }
  churn: { S: number | null; band: ChurnBand | null }
  /** θ estimates (last one per day) over the 12 weeks ending at as-of. */
  theta: { date: string; theta: number; se: number | null }[]
  /** Topic accuracy over the 28 days ending at as-of (and in the report's week). */
  topics: TopicView[]
  /** Attempts per UTC day over the 28 days ending at as-of (zero days included). */
  daily: { date: string; attempts: number; correct: number }[]
  goals: { topicId: string; targetLevel: number | null; priority: number | null }[]
  revisit: { itemId: string; topicId: string | null; lastWrongAt: string; wrongCount: number }[]
  recommendations: Recommendation[]
  /** Whether weekly_kpi has a row for this user and week (reports may be asked for users without one). */
  hasKpiRow: boolean
}

export type ChurnBand = 'low' | 'medium' | 'high'

export interface KpiView {
  key: 'I_t' | 'E_t' | 'R_t' | 'A_t' | 'P' | 'S'
  label: string
  explanation: string
  value: number | null
  /** Human form, e.g. "+0.12", "64%", "—". */
  display: string
  range: [number, number]
}

export interface TopicView {
  topicId: string
  attempts: number
  correct: number
  accuracy: number
  weekAttempts: number
  weekCorrect: number
}

export interface Recommendation {
  kind: 'weak-topic' | 'revisit' | 'churn' | 'goal' | 'keep-going' | 'no-activity'
  text: string
}
