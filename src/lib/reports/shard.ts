import { envFirst } from '../config/index.js'
import { usageError } from '../errors/index.js'

export interface Shard {
  index: number
  count: number
}

/**
 * FNV-1a (32 bit) over the UTF-8 bytes of the user id: stable across processes, machines, Node
 * and Postgres versions (hashtext() is not guaranteed to be), so every pod of an Indexed Job
 * agrees on who is whose.
 */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5
  for (const b of Buffer.from(s, 'utf8')) {
    h ^= b
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h >>> 0
}

export function shardOf(userId: string, count: number): number {
  return count <= 1 ? 0 : fnv1a32(userId) % count
}

export function inShard(userId: string, s: Shard): boolean {
  return shardOf(userId, s.count) === s.index
}

/**
 * The shard of this run: --shard i/n; else JOB_COMPLETION_INDEX (an Indexed Job) with the count
 * from --shard-count or JOB_COMPLETION_COUNT; else 0/1 (everyone).
 */
export function resolveShard(flag: string | undefined, shardCount: number | undefined, env: NodeJS.ProcessEnv = process.env): Shard {
  let index: number
  let count: number
  let source: string
  if (flag !== undefined && flag !== '') {
    const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(flag)
    if (!m) throw usageError(`--shard ${JSON.stringify(flag)} is not i/n`, ['e.g. --shard 0/4 (shards are numbered 0..n-1)'])
    index = Number(m[1])
    count = Number(m[2])
    source = '--shard'
  } else {
    const idx = envFirst(['JOB_COMPLETION_INDEX'], env)
    if (!idx) return { index: 0, count: 1 }
    if (!/^\d+$/.test(idx.value.trim())) throw usageError(`JOB_COMPLETION_INDEX=${JSON.stringify(idx.value)} is not a whole number`)
    index = Number(idx.value)
    const cnt = shardCount ?? (envFirst(['JOB_COMPLETION_COUNT'], env)?.value !== undefined ? Number(envFirst(['JOB_COMPLETION_COUNT'], env)!.value) : undefined)
    if (cnt === undefined || !Number.isInteger(cnt)) {
      throw usageError('JOB_COMPLETION_INDEX is set but the number of shards is not', ['Pass --shard-count N (the Job\'s completions), or set JOB_COMPLETION_COUNT, or use --shard i/n'])
    }
    count = cnt
    source = 'JOB_COMPLETION_INDEX'
  }
  if (count < 1 || count > 10_000) throw usageError(`${source}: shard count ${count} is out of range [1, 10000]`)
  if (index < 0 || index >= count) throw usageError(`${source}: shard index ${index} is not in 0..${count - 1}`, [`Shards are numbered from 0: --shard 0/${count} … --shard ${count - 1}/${count}`])
  return { index, count }
}
