/**
 * `npm run bench` runs every benchmark and prints one table: each scenario's wall time, peak RSS,
 * its in-run reference and the ratio to it, and the issue's target. `npm run bench -- <name>`
 * runs one with its full detail. Benchmarks are long and need a PostgreSQL server
 * (BENCH_DATABASE_URL or TEST_DATABASE_URL); none is part of the test suite.
 */
import { spawnSync } from 'node:child_process'
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'
import type { BenchOptions, BenchRow } from './types.js'

const BENCHES: Record<string, string> = {
  'irt-cli': 'the whole irt calibrate CLI (wall, peak RSS, read/fit/se/write) on 3 M, 1 M and 600k rows; CSV parse MB/s against a bare read',
  irt: 'the IRT engine in-process: E-step against a bare loop, what SEs add to each fit (bench and mirt reference sets)',
  'calibrate-stage': 'calibrate-irt end to end on 3 M observations in PostgreSQL against the offline irt calibrate CLI on the same rows',
  kpis: 'compute-kpis for 100,000 learners (whole command) against the per-user loop',
  features: 'aggregate-features over 60 days (whole command) against a bare scan of the read model',
  serve: 'irt serve req/s, p50/p99 (1 × 30, 100 × 30, 1000 × 40; new connection and keep-alive) and cold start against bare node:http',
  'update-theta': 'POST /analysis/irt/update-theta latency (p50/p95/p99) against the bare library call',
}

const name = process.argv[2]
const here = fileURLToPath(new URL('.', import.meta.url))

if (name === '--help' || name === '-h' || (name && !name.startsWith('-') && !(name in BENCHES))) {
  console.error(`usage: npm run bench [-- --quick]          every benchmark, one table\n       npm run bench -- <name> [flags]   one, with its detail (or npm run bench:<name>)\n${Object.entries(BENCHES).map(([k, v]) => `  ${k.padEnd(16)} ${v}`).join('\n')}`)
  process.exit(name === '--help' || name === '-h' ? 0 : 2)
}

if (name && !name.startsWith('-')) {
  // One benchmark: run its own script so it prints its detail.
  const r = spawnSync(process.execPath, [`${here}${name}.js`, ...process.argv.slice(3)], { stdio: 'inherit' })
  process.exit(r.status ?? 1)
}

const opts: BenchOptions = { quick: process.argv.includes('--quick') }
const rows: Array<BenchRow & { bench: string }> = []
const failed: string[] = []
for (const b of Object.keys(BENCHES)) {
  process.stderr.write(`\n=== ${b} ===\n`)
  try {
    const mod = (await import(`./${b}.js`)) as { run: (o: BenchOptions) => Promise<BenchRow[]> }
    for (const r of await mod.run(opts)) rows.push({ ...r, bench: b })
  } catch (e) {
    failed.push(`${b}: ${(e as Error).message.split('\n')[0]}`)
  }
}

const fmt = (v: number | null | undefined, d: number) => (v === null || v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(d))
const head = ['scenario', 'wall s', 'peak RSS MB', 'reference', 'ratio', 'target', 'met']
const body = rows.map((r) => [r.scenario, fmt(r.wallSeconds, 2), fmt(r.peakRssMB, 0), r.reference, fmt(r.ratio, 2), r.target ?? '', r.met === undefined ? '' : r.met ? 'yes' : 'NO'])
console.log('')
console.log(`| ${head.join(' | ')} |`)
console.log(`|${head.map(() => '---').join('|')}|`)
for (const l of body) console.log(`| ${l.join(' | ')} |`)
console.log('')
console.log(`machine: ${availableParallelism()} CPU(s) (${cpus()[0]?.model ?? 'unknown'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}, load average at the end ${loadavg().map((x) => x.toFixed(2)).join(' ')}${opts.quick ? ' — QUICK run: smaller data, not comparable with the targets' : ''}`)
if (failed.length) {
  console.log(`not run: ${failed.join('; ')}`)
  process.exitCode = 1
}
