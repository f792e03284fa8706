import type pg from 'pg'
import { z } from 'zod'
import { addDays } from '../config/index.js'
import { SeedopsError } from '../errors/index.js'
import type { Logger } from '../output/index.js'
import { Rng } from './random.js'

export const SeedParams = z.object({
  learners: z.number().int().min(1).max(1_000_000),
  items: z.number().int().min(8).max(100_000),
  days: z.number().int().min(1).max(730),
  seed: z.number().int().min(0),
  /** Last day of activity, YYYY-MM-DD (UTC). */
  endDate: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  /** Share of learners who stop coming part-way (churners). */
  churnRate: z.number().min(0).max(1).default(0.15),
  /** Number of malformed exam_results rows of the kinds real data has. */
  malformed: z.number().int().min(0).default(4),
})
export type SeedParams = z.input<typeof SeedParams>

export const TOPICS = ['algebra', 'geometry', 'fractions', 'statistics', 'probability', 'functions', 'trigonometry', 'calculus'] as const

export interface SeedSummary {
  learners: number
  items: number
  sessions: number
  answered: number
  malformed: number
  goals: number
  from: string
  to: string
}

const TRUTH_DDL = `CREATE TABLE IF NOT EXISTS seedops_demo_truth (
  kind text NOT NULL, id text NOT NULL, params jsonb NOT NULL, PRIMARY KEY (kind, id))`

const logistic = (x: number) => 1 / (1 + Math.exp(-x))

interface Batch {
  session_id: string[]
  user_id: string[]
  exam_id: number[]
  result_json: string[]
  score_raw: (number | null)[]
  created_at: string[]
  updated_at: string[]
}

function emptyBatch(): Batch {
  return { session_id: [], user_id: [], exam_id: [], result_json: [], score_raw: [], created_at: [], updated_at: [] }
}

async function flush(c: pg.PoolClient, b: Batch): Promise<void> {
  if (!b.session_id.length) return
  await c.query(
    `INSERT INTO exam_results (session_id, user_id, exam_id, status, result_json, score_raw, created_at, updated_at)
     SELECT s, u, e, 'completed', r::jsonb, sc, ca, ua
     FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::numeric[], $6::timestamptz[], $7::timestamptz[]) AS t(s, u, e, r, sc, ca, ua)`,
    [b.session_id, b.user_id, b.exam_id, b.result_json, b.score_raw, b.created_at, b.updated_at],
  )
}

/**
 * Writes realistic platform data (SPEC 1): questions by topic (some tagged `anchor` with
 * meta.irt), exam_results sessions whose result_json.questions[] come from a true 2PL model with
 * learners whose θ grows over time, response times and hints (a few missing, a few with the
 * legacy `correct` key), goals in interest_goal, learners who stop coming, and a few malformed
 * rows. Deterministic for a seed; the true parameters go to seedops_demo_truth.
 * Runs in the caller's transaction.
 */
export async function seedDemo(c: pg.PoolClient, input: SeedParams, logger?: Logger): Promise<SeedSummary> {
  const p = SeedParams.parse(input)
  const existing = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM exam_results WHERE session_id LIKE 'demo-%'`)
  if ((existing.rows[0]?.n ?? 0) > 0) {
    throw new SeedopsError(`the database already holds demo data (${existing.rows[0]!.n} demo sessions)`, {
      code: 'DEMO_EXISTS',
      suggestions: ['Use a fresh SEEDOPS_HOME or database, or keep the data you have: seedops demo (without seed) reuses it'],
    })
  }
  const rng = new Rng(p.seed)
  const from = addDays(p.endDate, -(p.days - 1))
  const t0 = Date.parse(`${from}T00:00:00Z`)

  // Items: 2PL truth, topics round-robin; ~10% anchors with a published meta.irt block.
  const items: { id: number; topic: string; a: number; b: number; anchor: boolean }[] = []
  for (let j = 0; j < p.items; j++) {
    const a = Math.exp(rng.normal(0, 0.25))
    const b = rng.normal(0, 1)
    items.push({ id: 1001 + j, topic: TOPICS[j % TOPICS.length]!, a, b, anchor: j % 10 === 0 })
  }
  await c.query(
    `INSERT INTO question (id, topic_id, difficulty, meta)
     SELECT id, t, d, m::jsonb FROM unnest($1::bigint[], $2::text[], $3::numeric[], $4::text[]) AS x(id, t, d, m)
     ON CONFLICT (id) DO NOTHING`,
    [
      items.map((i) => i.id),
      items.map((i) => i.topic),
      items.map((i) => Math.round(i.b * 1000) / 1000),
      items.map((i) =>
        JSON.stringify(
          i.anchor
            ? { tags: ['anchor'], irt: { a: +i.a.toFixed(4), b: +i.b.toFixed(4), c: 0, model: '2PL', version: 'demo-anchor' } }
            : { tags: [] },
        ),
      ),
    ],
  )
  await c.query(TRUTH_DDL)
  const byTopic = new Map<string, typeof items>()
  for (const it of items) byTopic.set(it.topic, [...(byTopic.get(it.topic) ?? []), it])

  let sessions = 0
  let answered = 0
  let goals = 0
  let batch = emptyBatch()
  const truthIds: string[] = []
  const truthParams: string[] = []
  for (const it of items) {
    truthIds.push(String(it.id))
    truthParams.push(JSON.stringify({ kind: 'item', a: it.a, b: it.b, c: 0, topic: it.topic }))
  }
  const goalRows: { u: string[]; t: string[]; lvl: number[]; pr: number[] } = { u: [], t: [], lvl: [], pr: [] }

  for (let i = 0; i < p.learners; i++) {
    const userId = i % 10 === 9 ? rng.uuid() : `learner-${String(i + 1).padStart(5, '0')}`
    const theta0 = rng.normal(0, 1)
    const growth = Math.max(0, rng.normal(0.012, 0.008)) // θ per day
    const pDay = rng.uniform(0.15, 0.7)
    const churnDay = rng.chance(p.churnRate) ? rng.int(Math.floor(p.days * 0.3), Math.floor(p.days * 0.8)) : p.days
    const favourite = rng.pick(TOPICS)
    const hintProne = rng.uniform(0.05, 0.4)
    const speed = Math.exp(rng.normal(0, 0.3))
    truthIds.push(userId)
    truthParams.push(JSON.stringify({ kind: 'learner', theta0, growth, churnDay, pDay }))
    if (rng.chance(0.7)) {
      const n = rng.int(1, 2)
      const seen = new Set<string>()
      for (let g = 0; g < n; g++) {
        const topic = g === 0 ? favourite : rng.pick(TOPICS)
        if (seen.has(topic)) continue
        seen.add(topic)
        goalRows.u.push(userId)
        goalRows.t.push(topic)
        goalRows.lvl.push(Math.round(rng.uniform(0.3, 1.5) * 1000) / 1000)
        goalRows.pr.push(g + 1)
      }
    }
    for (let d = 0; d < Math.min(p.days, churnDay); d++) {
      if (!rng.chance(pDay)) continue
      const theta = theta0 + growth * d
      const start = t0 + d * 86_400_000 + rng.int(6 * 3600, 21 * 3600) * 1000
      const topic = rng.chance(0.5) ? favourite : rng.pick(TOPICS)
      const pool = byTopic.get(topic)!
      const nq = rng.int(5, 15)
      const questions: Record<string, unknown>[] = []
      let dwell = 0
      let correctN = 0
      for (let q = 0; q < nq; q++) {
        const it = rng.chance(0.85) ? rng.pick(pool) : rng.pick(items)
        const pCorrect = logistic(it.a * (theta - it.b))
        const correct = rng.chance(pCorrect)
        const hint = rng.chance(hintProne * (1 + Math.max(0, it.b - theta) * 0.5))
        const secs = Math.round(Math.exp(rng.normal(Math.log(35 * speed) + 0.15 * (it.b - theta), 0.4)) * 10) / 10
        dwell += secs
        correctN += correct ? 1 : 0
        const row: Record<string, unknown> = { question_id: it.id, topic: it.topic }
        if (rng.chance(0.05)) row.correct = correct // legacy key
        else row.is_correct = correct
        if (!rng.chance(0.02)) row.time_spent_sec = secs
        if (!rng.chance(0.02)) row.used_hints = hint ? rng.int(1, 2) : 0
        questions.push(row)
      }
      sessions++
      answered += nq
      batch.session_id.push(`demo-${p.seed}-${i + 1}-${d}`)
      batch.user_id.push(userId)
      batch.exam_id.push(100 + TOPICS.indexOf(topic as (typeof TOPICS)[number]))
      batch.result_json.push(JSON.stringify({ questions, theta_true: undefined }))
      batch.score_raw.push(Math.round((correctN / nq) * 1000) / 1000)
      batch.created_at.push(new Date(start).toISOString())
      batch.updated_at.push(new Date(start + Math.round(dwell * 1000)).toISOString())
      if (batch.session_id.length >= 2000) {
        await flush(c, batch)
        batch = emptyBatch()
        logger?.progress(`demo seed: ${sessions} sessions, ${answered} answers (learner ${i + 1}/${p.learners})`)
      }
    }
  }
  // Malformed rows of the kinds real data has; the read model must skip them, verify must name them.
  const bad = [
    '"not an object"',
    '{"questions": {"question_id": 1001}}',
    '{"questions": [{"question_id": "abc", "is_correct": true}, {"question_id": null, "is_correct": false}]}',
    '{"answers": []}',
  ]
  for (let k = 0; k < p.malformed; k++) {
    const day = p.days - 1 - (k % Math.min(3, p.days))
    batch.session_id.push(`demo-${p.seed}-malformed-${k + 1}`)
    batch.user_id.push(`learner-${String((k % p.learners) + 1).padStart(5, '0')}`)
    batch.exam_id.push(199)
    batch.result_json.push(bad[k % bad.length]!)
    batch.score_raw.push(null)
    const at = new Date(t0 + day * 86_400_000 + 12 * 3600_000).toISOString()
    batch.created_at.push(at)
    batch.updated_at.push(at)
  }
  await flush(c, batch)
  await c.query(
    `INSERT INTO interest_goal (user_id, topic_id, target_level, priority)
     SELECT * FROM unnest($1::text[], $2::text[], $3::numeric[], $4::smallint[]) ON CONFLICT DO NOTHING`,
    [goalRows.u, goalRows.t, goalRows.lvl, goalRows.pr],
  )
  goals = goalRows.u.length
  await c.query(
    `INSERT INTO seedops_demo_truth (kind, id, params)
     SELECT p::jsonb ->> 'kind', id, p::jsonb FROM unnest($1::text[], $2::text[]) AS t(id, p)
     ON CONFLICT (kind, id) DO UPDATE SET params = EXCLUDED.params`,
    [truthIds, truthParams],
  )
  return { learners: p.learners, items: p.items, sessions, answered, malformed: p.malformed, goals, from, to: p.endDate }
}
