#!/usr/bin/env node
// npm run test:faults [-- --trials N] [vitest filters…]: runs the fault suite (vitest.faults.config.ts), then
// prints one table of scenario × trials × outcome from the rows the tests recorded. Fails when a test fails or
// any row lost data. Assumes `npm run build` ran (the npm script does it).
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const args = process.argv.slice(2)
const rest = []
let trials = process.env.FAULT_TRIALS
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--trials') trials = args[++i]
  else if (args[i].startsWith('--trials=')) trials = args[i].slice(9)
  else rest.push(args[i])
}
if (trials !== undefined && !/^[1-9][0-9]*$/.test(String(trials))) {
  console.error(`test:faults: --trials must be a positive integer, got ${JSON.stringify(trials)}`)
  process.exit(2)
}
const dir = mkdtempSync(join(tmpdir(), 'seedops-faults-'))
const table = join(dir, 'table.jsonl')
const scan = join(dir, 'secret-scan.jsonl')
const env = { ...process.env, FAULTS_TABLE_FILE: table, SECRET_SCAN_FILE: scan }
if (trials) env.FAULT_TRIALS = String(trials)
const started = Date.now()
const r = spawnSync(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', '--config', 'vitest.faults.config.ts', ...rest], { stdio: 'inherit', env })
const rows = existsSync(table) ? readFileSync(table, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []
// Every CLI run of the suite was scanned for planted secrets (test/support/cli.ts): one row for all of them.
if (existsSync(scan)) {
  const runs = readFileSync(scan, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l))
  const hits = runs.reduce((s, x) => s + x.hits, 0)
  rows.push({ scenario: 'secret scan over the suite', trials: runs.length, ok: runs.length - runs.filter((x) => x.hits > 0).length, lost: hits, outcome: `${runs.length} runs, ${hits} hits` })
}
rmSync(dir, { recursive: true, force: true })

const head = ['scenario', 'trials', 'ok', 'lost', 'outcome']
const body = rows.map((x) => [x.scenario, String(x.trials), String(x.ok), String(x.lost), x.outcome])
const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)))
const line = (cells) => '| ' + cells.map((c, i) => c.padEnd(w[i])).join(' | ') + ' |'
console.log(`\nFault suite: ${rows.length} scenarios, trials per kill scenario ${trials ?? 'default'}, ${((Date.now() - started) / 1000).toFixed(0)} s`)
console.log(line(head))
console.log('|' + w.map((n) => '-'.repeat(n + 2)).join('|') + '|')
for (const b of body) console.log(line(b))
const lost = rows.reduce((s, x) => s + x.lost, 0)
if (lost > 0) console.error(`test:faults: ${lost} trial(s) lost data`)
process.exit(r.status !== 0 ? r.status ?? 1 : lost > 0 ? 1 : 0)
