import { adoptFix, commandOf, isSeedopsCronJob, kc, legacyEntrypoint, mainContainer, scheduleText, stageOf } from '../cluster-helpers.js'
import { suspensionText } from '../legacy.js'
import type { DoctorCheck, Finding } from '../types.js'

/** Duplicates family: every expected CronJob present, and exactly one CronJob per stage (the predecessor's too). */

export const cronjobsPresent: DoctorCheck = {
  id: 'cronjobs.present',
  group: 'cluster',
  description: 'Every expected CronJob exists, and exactly one CronJob runs each stage',
  dependsOn: 'cluster.reachable',
  async run(ctx) {
    const s = await ctx.cluster()
    const ns = ctx.namespace
    const out: Finding[] = []
    const stages = ctx.expected.map((e) => e.stage)
    const legacyOf = (stage: string) => s.cronjobs.filter((c) => !isSeedopsCronJob(c) && stageOf(c, stages) === stage)
    // Not deployed at all: one finding, not one per missing CronJob (the predecessor's namespace before adopt).
    if (!ctx.expected.some((e) => s.cronjobs.some((c) => c.metadata?.name === e.name && isSeedopsCronJob(c)))) {
      const running = ctx.expected.map((e) => ({ stage: e.stage, legacy: legacyOf(e.stage) })).filter((x) => x.legacy.length)
      const none = ctx.expected.filter((e) => !legacyOf(e.stage).length).map((e) => e.stage)
      out.push(
        running.length
          ? {
              status: 'fail',
              subject: ns,
              message: `seedops is not deployed in ${ns}; the predecessor's CronJobs run ${running.map((x) => `${x.stage} (${x.legacy.map((o) => o.metadata!.name).join(', ')})`).join(', ')}${none.length ? `; nothing runs ${none.join(', ')}` : ''}: seedops adopt -n ${ns} shows the plan`,
              fix: adoptFix(ns),
            }
          : { status: 'fail', subject: ns, message: `seedops is not deployed in ${ns}: none of its ${ctx.expected.length} CronJobs (${ctx.expected.map((e) => e.name).join(', ')}) exists`, fix: [`seedops deploy -n ${ns}`] },
      )
    } else {
      const record = await s.adoption()
      for (const e of ctx.expected) {
        const own = s.cronjobs.find((c) => c.metadata?.name === e.name)
        const others = s.cronjobs.filter((c) => c.metadata?.name !== e.name && stageOf(c, stages) === e.stage)
        if (!own) {
          out.push({
            status: 'fail',
            subject: e.name,
            message: `CronJob ${e.name} (stage ${e.stage}) is missing${others.length ? `; the stage runs from ${others.map((o) => o.metadata!.name).join(', ')} instead` : ''}`,
            fix: others.some((o) => !isSeedopsCronJob(o)) ? adoptFix(ns) : [`seedops deploy -n ${ns}`, ...others.map((o) => `then: ${kc(ns)} delete cronjob ${o.metadata!.name}`)],
          })
          continue
        }
        for (const o of others) {
          const exact = JSON.stringify(commandOf(mainContainer(o)?.c)) === JSON.stringify(e.command)
          const legacy = !isSeedopsCronJob(o)
          const name = o.metadata!.name!
          if (legacy && o.spec?.suspend) {
            // Suspended legacy CronJobs do not run; adopt keeps them (never deletes in the same step) so --rollback can resume them.
            const recorded = record?.legacyCronJobs.some((l) => l.name === name)
            out.push({
              status: recorded ? 'ok' : 'warn',
              subject: name,
              message: `legacy CronJob ${name} (stage ${e.stage}, ${scheduleText(o)}) is ${suspensionText(name, record)}; ${recorded ? `delete it with seedops adopt --prune-legacy -n ${ns} once each stage has run` : `resuming it would run the stage beside seedops' ${e.name}`}`,
              fix: [`${kc(ns)} delete cronjob ${name}`],
            })
            continue
          }
          out.push({
            status: 'fail',
            subject: name,
            message: legacy
              ? `stage ${e.stage} is scheduled twice: legacy CronJob ${name} (${scheduleText(o)}) runs ${legacyEntrypoint(commandOf(mainContainer(o)?.c)) ?? 'it'} beside seedops' ${e.name} (${scheduleText(own)})`
              : `stage ${e.stage} is scheduled twice: CronJob ${name} (${o.spec?.schedule}) duplicates ${e.name} (${own.spec?.schedule})${exact ? ', same command' : `, command: ${commandOf(mainContainer(o)?.c).join(' ')}`}`,
            fix: legacy ? adoptFix(ns) : [`${kc(ns)} delete cronjob ${name}`],
            ...(exact ? { safeFix: { kind: 'delete-cronjob', name, duplicateOf: e.name } as const } : {}),
          })
        }
      }
    }
    // Two legacy CronJobs for one stage seedops has not deployed yet (aggregate-features-daily from two files).
    for (const e of ctx.expected.filter((x) => !s.cronjobs.some((c) => c.metadata?.name === x.name && isSeedopsCronJob(c)))) {
      const legacy = legacyOf(e.stage)
      if (legacy.length < 2) continue
      // A suspended copy runs nothing today, but resuming it (or a rollback) schedules the stage twice.
      const active = legacy.filter((o) => !o.spec?.suspend).length
      out.push({
        status: active >= 2 ? 'fail' : 'warn',
        subject: legacy.map((o) => o.metadata!.name).join(','),
        message: `stage ${e.stage} is scheduled ${legacy.length} times by legacy CronJobs: ${legacy.map((o) => `${o.metadata!.name} (${scheduleText(o)})`).join(' and ')}${active < 2 ? `; ${active ? 'only one is active, the other would run it twice if resumed' : 'all suspended'}` : ''}`,
        fix: adoptFix(ns),
      })
    }
    if (!out.some((f) => f.status !== 'ok')) out.push({ status: 'ok', message: `${ctx.expected.length} CronJobs present, one per stage (${ctx.expected.map((e) => e.name).join(', ')})` })
    return out
  },
}
