import type pg from 'pg'
import { posteriorSummary, priorPosterior, updatePosterior, type GridPosterior, type ScoringItem } from '../irt/score.js'
import { addDays, utcDayStart } from '../config/index.js'
import { ITEM_PARAMS_SQL } from '../irt-stage/sql.js'
import type { Logger } from '../output/index.js'

const USERS_SQL = `SELECT DISTINCT user_id FROM features_topic_daily WHERE date BETWEEN $1::date AND $2::date ORDER BY user_id`

/** A batch of users' responses to items with parameters, oldest first, up to the end of the last target day. */
const RESPONSES_SQL = `
SELECT b.user_id, COALESCE(qu.topic_id::text, b.topic) AS topic_id, to_char((b.completed_at AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD') AS day,
       b.item_id, b.correct
FROM seedops_attempt_base b
LEFT JOIN question qu ON qu.id = b.item_id
WHERE b.user_id = ANY($1::text[]) AND b.completed_at < $2::timestamptz AND b.item_id = ANY($3::bigint[])
ORDER BY b.user_id, 2, b.completed_at, b.session_id, b.question_no`

const UPDATE_SQL = `
UPDATE features_topic_daily f SET theta_estimate = u.theta, theta_sd = u.sd
FROM unnest($1::text[], $2::text[], $3::date[], $4::float8[], $5::float8[]) AS u(user_id, topic_id, date, theta, sd)
WHERE f.user_id = u.user_id AND f.topic_id = u.topic_id AND f.date = u.date`

const KEYS_SQL = `
SELECT user_id, topic_id, to_char(date, 'YYYY-MM-DD') AS day FROM features_topic_daily
WHERE user_id = ANY($1::text[]) AND date BETWEEN $2::date AND $3::date`

const BATCH_USERS = 500

/**
 * θ per user × topic × day: the EAP and posterior SD (N(0,1) prior, 61-point grid on [−6, 6]) of
 * the user's responses to that topic's items, from the first one up to the end of that day,
 * folded in one at a time (O(grid) per response). Only responses to items with parameters count;
 * a day whose topic has none keeps NULL. Users are read in batches, never one query per user.
 */
export async function fillTopicTheta(tx: pg.PoolClient, o: { from: string; to: string; logger: Logger }): Promise<{ filled: number; itemsWithParams: number }> {
  const params = await tx.query<{ item_id: number; a: number; b: number; c: number }>(ITEM_PARAMS_SQL)
  const items = new Map<number, ScoringItem>()
  for (const p of params.rows) items.set(Number(p.item_id), { item_id: String(p.item_id), a: p.a, b: p.b, c: p.c })
  if (items.size === 0) {
    o.logger.warn('--include-theta: no item parameters (mirt_item_params or question.meta.irt); theta_estimate stays empty. Run: seedops run calibrate-irt')
    return { filled: 0, itemsWithParams: 0 }
  }
  const users = (await tx.query<{ user_id: string }>(USERS_SQL, [o.from, o.to])).rows.map((r) => r.user_id)
  const end = utcDayStart(addDays(o.to, 1))
  const itemIds = [...items.keys()]
  const prior = priorPosterior()
  let filled = 0
  for (let i = 0; i < users.length; i += BATCH_USERS) {
    const batch = users.slice(i, i + BATCH_USERS)
    const rows = (await tx.query<{ user_id: string; topic_id: string | null; day: string; item_id: number; correct: boolean }>(RESPONSES_SQL, [batch, end, itemIds])).rows
    // Posterior snapshots after each day's last response, per user × topic (days ascending).
    const snaps = new Map<string, { day: string; theta: number; sd: number }[]>()
    let post: GridPosterior = prior
    for (let k = 0; k < rows.length; k++) {
      const r = rows[k]!
      if (r.topic_id === null) continue
      const prev = rows[k - 1]
      if (!prev || prev.user_id !== r.user_id || prev.topic_id !== r.topic_id) post = prior
      post = updatePosterior(post, items.get(Number(r.item_id))!, r.correct ? 1 : 0)
      const next = rows[k + 1]
      if (!next || next.user_id !== r.user_id || next.topic_id !== r.topic_id || next.day !== r.day) {
        const key = `${r.user_id}\u0000${r.topic_id}`
        const s = posteriorSummary(post)
        snaps.set(key, [...(snaps.get(key) ?? []), { day: r.day, theta: s.theta, sd: s.se }])
      }
    }
    // Every features row gets the posterior as of the end of its day (responses on earlier days count too).
    const out = { u: [] as string[], t: [] as string[], d: [] as string[], th: [] as number[], sd: [] as number[] }
    const keys = (await tx.query<{ user_id: string; topic_id: string; day: string }>(KEYS_SQL, [batch, o.from, o.to])).rows
    for (const k of keys) {
      const list = snaps.get(`${k.user_id}\u0000${k.topic_id}`)
      if (!list) continue
      let best: { theta: number; sd: number } | undefined
      for (const sn of list) if (sn.day <= k.day) best = sn
      if (!best) continue
      out.u.push(k.user_id)
      out.t.push(k.topic_id)
      out.d.push(k.day)
      out.th.push(best.theta)
      out.sd.push(best.sd)
    }
    if (out.u.length) filled += (await tx.query(UPDATE_SQL, [out.u, out.t, out.d, out.th, out.sd])).rowCount ?? 0
    o.logger.progress(`aggregate-features: topic θ for ${Math.min(i + BATCH_USERS, users.length)}/${users.length} users`)
  }
  return { filled, itemsWithParams: items.size }
}
