import { pct } from './labels.js'
import type { Recommendation, ReportData } from './model.js'

export interface RecommendOptions {
  /** A topic counts as weak only with at least this many attempts in the 28 days (default 5). */
  minTopicAttempts: number
  /** …and an accuracy below this (default 0.6). */
  weakAccuracy: number
  /** Weak topics listed at most (default 3). */
  maxWeakTopics: number
}

export const DEFAULT_RECOMMEND: RecommendOptions = { minTopicAttempts: 5, weakAccuracy: 0.6, maxWeakTopics: 3 }

/**
 * Rule-based recommendations, deterministic (same data, same list, same order):
 * churn nudge first when the risk is medium/high, then the weakest topics (accuracy below the
 * threshold with enough attempts, lowest first), a goal nudge when the goal probability is low,
 * then the items whose latest answer was wrong.
 */
export function recommend(d: Omit<ReportData, 'recommendations'>, opts: Partial<RecommendOptions> = {}): Recommendation[] {
  const o = { ...DEFAULT_RECOMMEND, ...opts }
  const out: Recommendation[] = []
  const total = d.daily.reduce((s, x) => s + x.attempts, 0)
  const lastActive = [...d.daily].reverse().find((x) => x.attempts > 0)?.date
  if (total === 0) out.push({ kind: 'no-activity', text: 'No practice in the last 4 weeks: a short session this week would restart the streak.' })
  if (d.churn.band === 'high') {
    out.push({ kind: 'churn', text: `High churn risk (${pct(d.churn.S)}): ${lastActive ? `last practice on ${lastActive}` : 'no recent practice'}. Reach out with a reminder and suggest a short session.` })
  } else if (d.churn.band === 'medium') {
    out.push({ kind: 'churn', text: `Medium churn risk (${pct(d.churn.S)}): plan two short sessions this week to keep the rhythm.` })
  }
  const weak = d.topics
    .filter((t) => t.attempts >= o.minTopicAttempts && t.accuracy < o.weakAccuracy)
    .sort((a, b) => a.accuracy - b.accuracy || b.attempts - a.attempts || (a.topicId < b.topicId ? -1 : 1))
    .slice(0, o.maxWeakTopics)
  for (const t of weak) out.push({ kind: 'weak-topic', text: `Practise ${t.topicId}: ${pct(t.accuracy)} correct over ${t.attempts} attempts in the last 4 weeks.` })
  const goal = d.goals[0]
  if (goal && d.goal.P !== null && d.goal.P < 0.5) {
    out.push({ kind: 'goal', text: `Goal ${goal.topicId}${goal.targetLevel !== null ? ` (level ${goal.targetLevel})` : ''} is not yet likely (${pct(d.goal.P)}): focus practice there.` })
  }
  for (const r of d.revisit) {
    out.push({ kind: 'revisit', text: `Revisit question ${r.itemId}${r.topicId ? ` (${r.topicId})` : ''}: last answered wrong on ${r.lastWrongAt}${r.wrongCount > 1 ? `, ${r.wrongCount} wrong answers` : ''}.` })
  }
  if (out.length === 0) out.push({ kind: 'keep-going', text: 'No weak topic and nothing to revisit: keep the current rhythm.' })
  return out
}
