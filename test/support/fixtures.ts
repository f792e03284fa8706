import type pg from 'pg'

export interface ExamFixture {
  session_id: string
  user_id: string
  /** ISO instant of created_at. */
  at: string
  /** ISO instant of updated_at (null keeps it NULL). Default: same as `at`. */
  updated?: string | null
  /** questions[] as stored in result_json, or any raw JSON value for malformed rows. */
  questions?: Record<string, unknown>[]
  raw?: unknown
}

/** Inserts exam_results rows as the platform writes them. */
export async function insertExams(q: Pick<pg.Pool, 'query'>, rows: ExamFixture[]): Promise<void> {
  for (const r of rows) {
    const json = r.raw !== undefined ? JSON.stringify(r.raw) : JSON.stringify({ questions: r.questions ?? [] })
    await q.query(
      `INSERT INTO exam_results (session_id, user_id, exam_id, status, result_json, created_at, updated_at)
       VALUES ($1, $2, 1, 'completed', $3::jsonb, $4, $5)`,
      [r.session_id, r.user_id, json, r.at, r.updated === undefined ? r.at : r.updated],
    )
  }
}

export async function insertQuestions(q: Pick<pg.Pool, 'query'>, rows: { id: number; topic: string | null; meta?: unknown }[]): Promise<void> {
  for (const r of rows) {
    await q.query(`INSERT INTO question (id, topic_id, meta) VALUES ($1, $2, $3::jsonb)`, [r.id, r.topic, JSON.stringify(r.meta ?? {})])
  }
}

/** Waits until `pred(text)` holds for a child's accumulated stderr, or rejects after timeoutMs. */
export function waitForOutput(stream: NodeJS.ReadableStream, pred: (s: string) => boolean, timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = ''
    const timer = setTimeout(() => reject(new Error(`timed out waiting for output; got: ${buf}`)), timeoutMs)
    stream.on('data', (d: Buffer) => {
      buf += d.toString()
      if (pred(buf)) {
        clearTimeout(timer)
        resolve(buf)
      }
    })
  })
}

/** Two learners, two questions, two sessions on 2026-03-14/15: the smallest data a stage run writes rows from. */
export async function insertTwoLearners(q: Pick<pg.Pool, 'query'>): Promise<void> {
  await insertQuestions(q, [
    { id: 1, topic: 'alg' },
    { id: 2, topic: 'geo' },
  ])
  await insertExams(q, [
    { session_id: 's1', user_id: 'u1', at: '2026-03-14T10:00:00Z', questions: [{ question_id: 1, is_correct: true }, { question_id: 2, is_correct: false }] },
    { session_id: 's2', user_id: 'u2', at: '2026-03-15T10:00:00Z', questions: [{ question_id: 1, is_correct: false }] },
  ])
}
