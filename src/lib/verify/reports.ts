import { existsSync } from 'node:fs'
import type { S3Client } from '@aws-sdk/client-s3'
import { addDays, envFirst, isoWeekStart } from '../config/index.js'
import { parseFormats } from '../reports/stage.js'
import { createS3Client, keySegment, parseObjectUrl, S3Store } from '../storage/index.js'
import { lastSuccess } from '../stages/run-log.js'
import { stageFreshness } from './freshness.js'
import type { Check, CheckGroup, VerifyContext } from './types.js'

export interface ReportChecksOptions {
  /** Formats every user must have (--format); default: those of the week's last successful run, else html. */
  formats?: string
  /** S3 client for the existence check (tests hand in one); default: from the AWS env chain when AWS_REGION/S3_BUCKET/keys are set. */
  s3Client?: S3Client
  env?: NodeJS.ProcessEnv
}

interface Artifact {
  user_id: string
  format: string
  url: string
}

async function weekFormats(ctx: VerifyContext, weekStart: string, flag: string | undefined): Promise<string[]> {
  if (flag) return parseFormats(flag)
  const f = (await lastSuccess(ctx.q, 'generate-report', { asOfFrom: weekStart, asOfTo: addDays(weekStart, 6) }))?.params.formats
  return Array.isArray(f) && f.length ? (f as string[]) : ['html']
}

const week = (ctx: VerifyContext) => isoWeekStart(ctx.asOf)

/** Checks on report_artifacts (SPEC 5 verify reports): freshness, coverage per format, URLs, objects. */
export function reportChecks(o: ReportChecksOptions = {}): Check[] {
  const env = o.env ?? process.env
  return [
    {
      id: 'freshness',
      description: 'generate-report succeeded within its freshness limit (--max-age-hours, else its CronJob schedule: weekly, 192 h)',
      async run(ctx) {
        const f = await stageFreshness(ctx, 'generate-report', 192)
        if (f.verdict === 'never') return { status: 'fail', message: 'generate-report has never succeeded (run: seedops run generate-report)', numbers: f.numbers }
        if (f.verdict === 'stale') return { status: 'fail', message: `last successful run ${f.ageH} h ago (> ${f.maxAgeH} h)`, numbers: f.numbers }
        return { status: 'ok', message: `last success ${f.ageH} h ago, as of ${f.run!.asOf}`, numbers: f.numbers }
      },
    },
    {
      id: 'coverage',
      description: 'every user with a weekly_kpi row for the week has a report_artifacts row per format',
      async run(ctx) {
        const ws = week(ctx)
        const formats = await weekFormats(ctx, ws, o.formats)
        const r = await ctx.q.query<{ user_id: string; format: string; total: number; missing_total: number }>(
          `WITH expected AS (
             SELECT k.user_id, f.format FROM weekly_kpi k CROSS JOIN unnest($2::text[]) AS f(format) WHERE k.week_start = $1::date
           ), missing AS (
             SELECT e.* FROM expected e LEFT JOIN report_artifacts a ON a.user_id = e.user_id AND a.week_start = $1::date AND a.format = e.format
             WHERE a.id IS NULL
           )
           SELECT m.user_id, m.format, (SELECT count(*)::int FROM expected) AS total, count(*) OVER ()::int AS missing_total
           FROM missing m ORDER BY m.user_id, m.format LIMIT 5`,
          [ws, formats],
        )
        const expected = r.rows[0]?.total ?? (await ctx.q.query<{ n: number }>(`SELECT count(*)::int AS n FROM weekly_kpi WHERE week_start = $1::date`, [ws])).rows[0]!.n * formats.length
        const missing = r.rows[0]?.missing_total ?? 0
        const numbers = { week_start: ws, formats: formats.join('+'), expected, present: expected - missing, missing }
        if (expected === 0) return { status: 'warn', message: `no weekly_kpi rows for the week ${ws}: nothing to cover (run: seedops run compute-kpis)`, numbers }
        if (missing > 0)
          return {
            status: 'fail',
            message: `${missing} of ${expected} reports missing for the week ${ws} (run: seedops run generate-report --date ${ws})`,
            numbers,
            rows: r.rows.map(({ user_id, format }) => ({ user_id, format })),
          }
        return { status: 'ok', message: `${expected} reports (${formats.join('+')}) for ${expected / formats.length} users, week ${ws}`, numbers }
      },
    },
    {
      id: 'urls',
      description: 'artifact URLs are well-formed s3:// or file:// URLs of reports/{user}/{week}/report.{fmt}',
      async run(ctx) {
        const ws = week(ctx)
        const rows = (await ctx.q.query<Artifact>(`SELECT user_id, format, url FROM report_artifacts WHERE week_start = $1::date ORDER BY user_id, format`, [ws])).rows
        const bad = rows.filter((a) => {
          const p = parseObjectUrl(a.url)
          const key = `reports/${keySegment(a.user_id)}/${ws}/report.${a.format}`
          if (!p) return true
          // A local folder stands for the reports/ prefix (LocalStore), so a file path ends with the key minus it.
          return p.kind === 's3' ? p.key !== key : !p.path.replace(/\\/g, '/').endsWith('/' + key.slice('reports/'.length))
        })
        const numbers = { week_start: ws, artifacts: rows.length, malformed: bad.length }
        if (bad.length) return { status: 'fail', message: `${bad.length} of ${rows.length} artifact URLs are malformed or do not match their key`, numbers, rows: bad.slice(0, 5) as unknown as Record<string, unknown>[] }
        return { status: rows.length ? 'ok' : 'warn', message: rows.length ? `${rows.length} URLs well-formed` : `no artifacts for the week ${ws}`, numbers }
      },
    },
    {
      id: 'objects',
      description: 'the object behind every artifact URL exists (file:// always; s3:// when an S3 client is configured)',
      async run(ctx) {
        const ws = week(ctx)
        const rows = (await ctx.q.query<Artifact>(`SELECT user_id, format, url FROM report_artifacts WHERE week_start = $1::date ORDER BY user_id, format`, [ws])).rows
        const s3Configured = Boolean(o.s3Client) || envFirst(['S3_BUCKET', 'AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_ENDPOINT_URL', 'S3_ENDPOINT', 'AWS_PROFILE'], env) !== undefined
        const stores = new Map<string, S3Store>()
        const endpoint = envFirst(['AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL', 'S3_ENDPOINT'], env)?.value
        const region = envFirst(['AWS_REGION', 'AWS_DEFAULT_REGION'], env)?.value ?? 'us-east-1'
        let checked = 0
        let skipped = 0
        const missing: Artifact[] = []
        const errors: string[] = []
        let next = 0
        const worker = async () => {
          while (next < rows.length) {
            const a = rows[next++]!
            const p = parseObjectUrl(a.url)
            if (!p) continue
            if (p.kind === 'file') {
              checked++
              if (!existsSync(p.path)) missing.push(a)
              continue
            }
            if (!s3Configured) {
              skipped++
              continue
            }
            let store = stores.get(p.bucket)
            if (!store) {
              const cfg = { bucket: p.bucket, region, endpoint, forcePathStyle: Boolean(endpoint) }
              store = new S3Store(o.s3Client ?? createS3Client(cfg, env), cfg)
              stores.set(p.bucket, store)
            }
            try {
              checked++
              if (!(await store.exists(p.key))) missing.push(a)
            } catch (e) {
              errors.push((e as Error).message)
              missing.push(a)
            }
          }
        }
        await Promise.all(Array.from({ length: 16 }, worker))
        missing.sort((x, y) => (x.user_id < y.user_id ? -1 : x.user_id > y.user_id ? 1 : x.format < y.format ? -1 : 1))
        const numbers = { week_start: ws, artifacts: rows.length, checked, missing: missing.length, not_checked_s3: skipped }
        if (missing.length)
          return {
            status: 'fail',
            message: `${missing.length} of ${checked} objects missing${errors.length ? ` (first error: ${errors[0]})` : ''} (re-run: seedops run generate-report --date ${ws})`,
            numbers,
            rows: missing.slice(0, 5) as unknown as Record<string, unknown>[],
          }
        if (skipped) return { status: 'warn', message: `${checked} objects present; ${skipped} s3:// objects not checked (no S3 configuration: set AWS_REGION and credentials)`, numbers }
        return { status: rows.length ? 'ok' : 'warn', message: rows.length ? `${checked} objects present` : `no artifacts for the week ${ws}`, numbers }
      },
    },
  ]
}

export function reportsGroup(o: ReportChecksOptions = {}): CheckGroup {
  return { id: 'reports', description: 'report_artifacts and the stored reports', checks: reportChecks(o) }
}
