import { CronExpressionParser } from 'cron-parser'
import { kc, scheduleText } from '../cluster-helpers.js'
import { age } from '../service-checks.js'
import type { DoctorCheck, Finding } from '../types.js'

/** Schedules family: each CronJob fired when its schedule and timeZone said it should. */

/** A missed run is reported once the controller has had this long to start it. */
const FIRE_SLACK_MS = 10 * 60_000

export const cronjobsFired: DoctorCheck = {
  id: 'cronjobs.fired',
  group: 'cluster',
  description: 'Every CronJob that is not suspended fired when its schedule (and time zone) said it should',
  dependsOn: 'cluster.reachable',
  async run(ctx) {
    const s = await ctx.cluster()
    const ns = ctx.namespace
    const out: Finding[] = []
    let checked = 0
    for (const cj of s.cronjobs) {
      const name = cj.metadata!.name!
      if (cj.spec?.suspend) continue
      checked++
      const last = cj.status?.lastScheduleTime ? new Date(cj.status.lastScheduleTime) : undefined
      const since = last ?? new Date(cj.metadata?.creationTimestamp ?? ctx.now)
      const tz = cj.spec?.timeZone ?? 'UTC'
      let due: Date[]
      try {
        due = CronExpressionParser.parse(cj.spec!.schedule, { currentDate: since, tz })
          .take(50)
          .map((d) => d.toDate())
          .filter((d) => d.getTime() + FIRE_SLACK_MS < ctx.now.getTime())
      } catch (e) {
        out.push({ status: 'fail', subject: name, message: `CronJob ${name}: schedule ${scheduleText(cj)} cannot be evaluated: ${(e as Error).message}`, fix: [`seedops schedule set ${name} "<cron>" -n ${ns}`] })
        continue
      }
      if (!due.length) continue
      const missed = due.length >= 50 ? '50 or more' : String(due.length)
      const active = (cj.status?.active ?? []).map((a) => a.name!).filter(Boolean)
      const fix: string[] = []
      let why: string
      if (active.length && cj.spec?.concurrencyPolicy === 'Forbid') {
        why = `job ${active.join(', ')} is still active and concurrencyPolicy Forbid skips every run while it is`
        fix.push(`${kc(ns)} delete job ${active.join(' ')}`, `see why it hangs first: seedops jobs logs ${active[0]} -n ${ns}`)
      } else if (cj.spec?.startingDeadlineSeconds !== undefined && cj.spec.startingDeadlineSeconds < 300) {
        why = `startingDeadlineSeconds ${cj.spec.startingDeadlineSeconds} is shorter than the controller's delay, so late runs are dropped`
        fix.push(`${kc(ns)} patch cronjob ${name} --type=json -p '[{"op":"remove","path":"/spec/startingDeadlineSeconds"}]'`)
      } else {
        why = 'the CronJob controller did not start it (kube-controller-manager not running, clock skew, or more than 100 missed runs, after which it gives up)'
        fix.push(`${kc(ns)} get events --field-selector involvedObject.kind=CronJob,involvedObject.name=${name}`)
      }
      fix.push(`run it now: seedops jobs trigger ${name} -n ${ns} --wait`)
      out.push({
        status: 'fail',
        subject: name,
        message: `CronJob ${name} (${scheduleText(cj)}) has not fired since ${last ? `its last run ${last.toISOString()}` : `it was created ${since.toISOString()}`}: due ${due[0].toISOString()} (${age(ctx.now.getTime() - due[0].getTime())} ago), ${missed} run${due.length === 1 ? '' : 's'} missed; ${why}`,
        fix,
      })
    }
    if (!out.length) out.push({ status: 'ok', message: `${checked} active CronJobs fired on schedule` })
    return out
  },
}
