import type { V1CronJob } from '@kubernetes/client-node'
import { DEPLOYED_IMAGE_ANNOTATION } from '../../kube/deploy.js'
import type { ExpectedCronJob } from '../../kube/expected.js'
import { adoptFix, commandOf, isSeedopsCronJob, kc, legacyEntrypoint, mainContainer, scheduleText } from '../cluster-helpers.js'
import type { DoctorCheck, DoctorContext, Finding } from '../types.js'

/** CronJob spec family: image and command as in k8s/, schedule, suspend and concurrencyPolicy. */

export const cronjobsSpec: DoctorCheck = {
  id: 'cronjobs.spec',
  group: 'cluster',
  description: 'Each CronJob has the expected image, command, schedule and is not suspended',
  dependsOn: 'cluster.reachable',
  async run(ctx) {
    const s = await ctx.cluster()
    const out: Finding[] = []
    let checked = 0
    for (const e of ctx.expected) {
      const cj = s.cronjobs.find((c) => c.metadata?.name === e.name)
      if (!cj) continue
      checked++
      const m = mainContainer(cj)
      const ns = ctx.namespace
      if (!isSeedopsCronJob(cj)) {
        // The predecessor's CronJob under seedops' name: comparing fields would only list every one of them.
        out.push({ status: 'fail', subject: e.name, message: `CronJob ${e.name} is the predecessor's, not seedops': it runs ${legacyEntrypoint(commandOf(m?.c)) ?? (commandOf(m?.c).join(' ') || 'the image default')} (${scheduleText(cj)})`, fix: adoptFix(ns) })
        continue
      }
      const want = wantedImage(ctx, e, cj)
      if (m && want && m.c.image !== want.image) {
        out.push({
          status: 'fail',
          subject: e.name,
          message: `CronJob ${e.name} runs image ${m.c.image}, expected ${want.image} (${want.source === 'flag' ? '--image' : 'the image seedops deploy put there'})`,
          fix: [`${kc(ns)} set image cronjob/${e.name} ${m.c.name}=${want.image}`, `or redeploy: seedops deploy -n ${ns}${want.image.includes(':') ? ` --image ${want.image}` : ''}`],
          safeFix: { kind: 'set-image', cronjob: e.name, container: m.c.name, image: want.image, source: want.source },
        })
      } else if (m && !want && m.c.image !== e.image) {
        // Nothing recorded (deployed by hand or by an older seedops): the overlay's tag is a guess, never a fix.
        out.push({
          status: 'warn',
          subject: e.name,
          message: `CronJob ${e.name} runs image ${m.c.image}; k8s/ names ${e.image}, and seedops has no record of deploying either`,
          fix: [`if ${m.c.image} is intended, record it: seedops deploy -n ${ns} --image ${m.c.image}`, `or pass the image you deployed: seedops doctor --image <registry>/seedops:<tag>`],
        })
      }
      const cmd = commandOf(m?.c)
      if (JSON.stringify(cmd) !== JSON.stringify(e.command)) {
        out.push({ status: 'fail', subject: e.name, message: `CronJob ${e.name} runs \`${cmd.join(' ') || '(image default)'}\`, expected \`${e.command.join(' ')}\``, fix: [`seedops deploy -n ${ns}`] })
      }
      if (cj.spec?.schedule !== e.schedule) {
        out.push({ status: 'warn', subject: e.name, message: `CronJob ${e.name} schedule is "${cj.spec?.schedule}", k8s/ has "${e.schedule}"`, fix: [`seedops schedule set ${e.name} default -n ${ns}   # back to "${e.schedule}"`, 'or, if the change is intended, put it in k8s/ so the next deploy keeps it'] })
      }
      if (cj.spec?.suspend && !e.suspend) {
        out.push({ status: 'warn', subject: e.name, message: `CronJob ${e.name} is suspended: stage ${e.stage} does not run`, fix: [`${kc(ns)} patch cronjob ${e.name} -p '{"spec":{"suspend":false}}'`] })
      }
      if ((cj.spec?.concurrencyPolicy ?? 'Allow') !== e.concurrencyPolicy) {
        out.push({ status: 'warn', subject: e.name, message: `CronJob ${e.name} concurrencyPolicy is ${cj.spec?.concurrencyPolicy ?? 'Allow'}, expected ${e.concurrencyPolicy}`, fix: [`seedops deploy -n ${ns}`] })
      }
    }
    if (!out.length) out.push({ status: 'ok', message: checked ? `${checked} CronJobs match k8s/ (image, command, schedule)` : 'no expected CronJob present to compare (see cronjobs.present)' })
    return out
  },
}

/**
 * The image a CronJob's seedops container should run: the one given with --image, else the one
 * `seedops deploy` recorded on it. Never the overlay's default tag: that would roll a pinned
 * release back to whatever k8s/ happens to name.
 */
export function wantedImage(ctx: DoctorContext, e: ExpectedCronJob, cj: V1CronJob): { image: string; source: 'flag' | 'deployed' } | undefined {
  if (ctx.explicitImages) return { image: e.image, source: 'flag' }
  const recorded = cj.metadata?.annotations?.[DEPLOYED_IMAGE_ANNOTATION]
  return recorded ? { image: recorded, source: 'deployed' } : undefined
}
