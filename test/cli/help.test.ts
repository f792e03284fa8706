import { Config } from '@oclif/core'
import { describe, expect, it } from 'vitest'
import { ROOT, runCli } from '../support/cli.js'

describe('help fits on one screen', () => {
  it('seedops --help is at most 40 lines at 100 columns, one line per topic and command', async () => {
    const r = await runCli(['--help'], { env: { OCLIF_COLUMNS: '100' } })
    expect(r.code).toBe(0)
    const lines = r.stdout.trimEnd().split('\n')
    expect(lines.length, r.stdout).toBeLessThanOrEqual(40)
    expect(Math.max(...lines.map((l) => l.length)), r.stdout).toBeLessThanOrEqual(130)
    // A summary, not the description's paragraph: each root command is one line.
    const commands = lines.slice(lines.indexOf('COMMANDS') + 1).filter((l) => l.trim())
    expect(commands.map((l) => l.trim().split(/\s+/)[0])).toEqual(['adopt', 'demo', 'deploy', 'doctor', 'help', 'status'])
  })

  it('every command of the built CLI has a one-line summary of at most 80 characters, and a longer description', async () => {
    const config = await Config.load(ROOT)
    const ours = config.commands.filter((c) => c.pluginName === config.pjson.name)
    expect(ours.length).toBeGreaterThanOrEqual(30)
    for (const c of ours) {
      expect(c.summary, c.id).toBeTruthy()
      expect(c.summary!.length, `${c.id}: ${c.summary}`).toBeLessThanOrEqual(80)
      expect(c.summary, c.id).not.toContain('\n')
      expect((c.description ?? '').length, c.id).toBeGreaterThan(c.summary!.length)
    }
    // A topic's help lists its commands by summary.
    const run = await runCli(['run', '--help'], { env: { OCLIF_COLUMNS: '100' } })
    expect(run.stdout).toContain('Weekly KPIs (I_t, E_t, R_t, A_t, P, S) per active learner.')
  })
})
