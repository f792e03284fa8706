/**
 * The whole `seedops irt calibrate` command on data of the real size (npm run bench:irt-cli).
 * Generates three long-format CSV files from a fixed seed into a temp dir:
 *   (a) 100,000 persons × 500-item bank, 30 items each (3 M rows), 2PL
 *   (b) 10,000 × 100 complete (1 M rows), 2PL
 *   (c) 20,000 × 400 bank, 30 items each (600k rows), 2PL
 * For each: `node bin/run.js irt calibrate --input … --out … --json` (defaults, SEs on) under
 * /usr/bin/time -v (wall seconds, peak RSS, the command's own read/fit/se/write phases), and the
 * CSV parse throughput in this process (parse + build into the typed arrays) against a bare read
 * of the same file (all bytes read + a newline count loop) measured in the same run.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { readResponsesCsvStream } from '../src/lib/irt/csv.js'
import { timeCommand } from './measure.js'
import { simulate } from './sim.js'
import type { BenchOptions, BenchRow } from './types.js'

/** 2PL responses (bench/irt.ts's simulation), written as CSV user_id,item_id,is_correct in person order. */
export function writeCsv(path: string, seed: number, nP: number, J: number, k: number): { bytes: number; rows: number } {
  const sim = simulate(seed, nP, J, k, false)
  const itemId = Array.from({ length: J }, (_, j) => `i${String(j + 1).padStart(4, '0')}`)
  const fd = openSync(path, 'w')
  let out = 'user_id,item_id,is_correct\n'
  let u = ''
  let last = -1
  for (let o = 0; o < sim.person.length; o++) {
    if (sim.person[o] !== last) {
      last = sim.person[o]
      u = `u${String(last + 1).padStart(6, '0')}`
      if (out.length > 1 << 20) {
        writeSync(fd, out)
        out = ''
      }
    }
    out += `${u},${itemId[sim.item[o]]},${sim.resp[o]}\n`
  }
  const rows = sim.person.length
  writeSync(fd, out)
  closeSync(fd)
  return { bytes: statSync(path).size, rows }
}

/** The reference: every byte read into memory and a loop over them (newline count). */
function bareRead(path: string): number {
  const t0 = performance.now()
  const buf = readFileSync(path)
  let n = 0
  for (let i = 0; i < buf.length; i++) if (buf[i] === 10) n++
  const s = (performance.now() - t0) / 1000
  if (n < 0) console.log(n)
  return s
}

const cpuSeconds = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

/** Wall and CPU seconds of one parse + build (one thread, so CPU time is what an idle core would take). */
function parse(path: string): { wall: number; cpu: number } {
  const c0 = cpuSeconds()
  const t0 = performance.now()
  const { data } = readResponsesCsvStream(path)
  const wall = (performance.now() - t0) / 1000
  const cpu = cpuSeconds() - c0
  if (data.nObs < 0) console.log(data.nObs)
  return { wall, cpu }
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1]!

interface Scenario {
  key: string
  label: string
  seed: number
  nP: number
  J: number
  k: number
  targetS: number
  targetMB?: number
}

export const SCENARIOS: Scenario[] = [
  { key: 'a', label: '100k × 500 bank, 30 each, 3 M rows, 2PL, SEs on', seed: 1001, nP: 100_000, J: 500, k: 30, targetS: 6, targetMB: 800 },
  { key: 'b', label: '10k × 100 complete, 2PL, SEs on', seed: 1002, nP: 10_000, J: 100, k: 100, targetS: 1.8 },
  { key: 'c', label: '20k × 400 bank, 30 each, 600k rows, 2PL, SEs on', seed: 1003, nP: 20_000, J: 400, k: 30, targetS: 2.5 },
]

export interface CliDetail {
  scenario: string
  rows: number
  mb: number
  wall_s: number
  peak_rss_mb: number | null
  phases: Record<string, number> | null
  iterations: number | null
  parse_s: number
  parse_mb_s: number
  /** The same from CPU seconds (less disturbed by other work on the machine). */
  parse_cpu_mb_s: number
  bare_read_s: number
  bare_mb_s: number
  parse_vs_bare: number
}

export async function run(opts: BenchOptions = {}, details: CliDetail[] = []): Promise<BenchRow[]> {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
  const dir = mkdtempSync(join(tmpdir(), 'seedops-bench-irt-cli-'))
  const rows: BenchRow[] = []
  try {
    for (const sc of SCENARIOS) {
      const nP = opts.quick ? Math.ceil(sc.nP / 10) : sc.nP
      const input = join(dir, `${sc.key}.csv`)
      const out = join(dir, `${sc.key}-params.csv`)
      const gen = writeCsv(input, sc.seed, nP, sc.J, sc.k)
      const mb = gen.bytes / 1e6
      // In-process parse throughput: median of 3, each against a bare read taken just before it.
      const bare: number[] = []
      const parsed: number[] = []
      const parsedCpu: number[] = []
      for (let t = 0; t < 3; t++) {
        bare.push(bareRead(input))
        const p = parse(input)
        parsed.push(p.wall)
        parsedCpu.push(p.cpu)
      }
      const bareS = median(bare)
      const parseS = median(parsed)
      const m = await timeCommand(process.execPath, [join(root, 'bin', 'run.js'), 'irt', 'calibrate', '--input', input, '--out', out, '--json'], { cwd: root })
      const doc = JSON.parse(m.stdout) as { result: { fit: { iterations: number }; timings?: Record<string, number> } }
      const d: CliDetail = {
        scenario: `${sc.key}: ${sc.label}`,
        rows: gen.rows,
        mb,
        wall_s: m.wallSeconds,
        peak_rss_mb: m.peakRssMB,
        phases: doc.result.timings ?? null,
        iterations: doc.result.fit.iterations ?? null,
        parse_s: parseS,
        parse_mb_s: mb / parseS,
        parse_cpu_mb_s: mb / median(parsedCpu),
        bare_read_s: bareS,
        bare_mb_s: mb / bareS,
        parse_vs_bare: parseS / bareS,
      }
      details.push(d)
      const target = `≤ ${sc.targetS} s${sc.targetMB ? `, ≤ ${sc.targetMB} MB` : ''}`
      rows.push({
        scenario: `irt calibrate ${sc.label}${opts.quick ? ' (quick: 1/10 persons)' : ''}`,
        wallSeconds: m.wallSeconds,
        peakRssMB: m.peakRssMB,
        reference: `CSV parse ${d.parse_mb_s.toFixed(0)} MB/s vs bare read ${d.bare_mb_s.toFixed(0)} MB/s (ratio = parse / bare time)`,
        ratio: d.parse_vs_bare,
        target,
        met: m.wallSeconds <= sc.targetS && (sc.targetMB === undefined || (m.peakRssMB !== null && m.peakRssMB <= sc.targetMB)),
      })
      rmSync(input)
      rmSync(out)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  return rows
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const details: CliDetail[] = []
  const rows = await run({ quick: process.argv.includes('--quick') }, details)
  console.log('irt calibrate, whole CLI (node bin/run.js … --out, defaults, SEs on), 2 cores')
  console.table(
    details.map((d) => ({
      scenario: d.scenario,
      rows: d.rows,
      MB: Number(d.mb.toFixed(1)),
      wall_s: Number(d.wall_s.toFixed(2)),
      peak_rss_MB: d.peak_rss_mb === null ? null : Math.round(d.peak_rss_mb),
      ...(d.phases ? Object.fromEntries(Object.entries(d.phases).map(([k, v]) => [`${k}_s`, Number(v.toFixed(2))])) : {}),
      cycles: d.iterations,
    })),
  )
  console.log('CSV parse + build into typed arrays, in-process, median of 3, against a bare read (all bytes + newline count) of the same file:')
  console.table(
    details.map((d) => ({
      scenario: d.scenario.slice(0, 1),
      parse_s: Number(d.parse_s.toFixed(3)),
      parse_MB_s: Math.round(d.parse_mb_s),
      parse_cpu_MB_s: Math.round(d.parse_cpu_mb_s),
      bare_s: Number(d.bare_read_s.toFixed(3)),
      bare_MB_s: Math.round(d.bare_mb_s),
      'parse/bare': Number(d.parse_vs_bare.toFixed(2)),
      'target ≥100 MB/s': d.parse_mb_s >= 100 ? 'met' : 'NOT met',
    })),
  )
  console.table(rows.map((r) => ({ scenario: r.scenario, wall_s: Number(r.wallSeconds.toFixed(2)), peak_rss_MB: r.peakRssMB === null ? null : Math.round(r.peakRssMB), target: r.target, met: r.met })))
}
