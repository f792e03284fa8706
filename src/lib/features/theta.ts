import type pg from 'pg'
import type { Logger } from '../output/index.js'

/** Topic θ per user × topic × day; filled in once the IRT engine lands. */
export async function fillTopicTheta(_tx: pg.PoolClient, _o: { from: string; to: string; logger: Logger }): Promise<{ filled: number; itemsWithParams: number }> {
  return { filled: 0, itemsWithParams: 0 }
}
