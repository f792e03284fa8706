/**
 * `npm run bench -- <name> [flags]`: runs one benchmark (they are long and need a PostgreSQL
 * server, so none runs by default). Each prints its figures with ratios against a reference
 * measured in the same run.
 */
const BENCHES: Record<string, string> = {
  features: 'aggregate-features against a bare scan of the read model (60 days of platform-shaped data)',
  kpis: 'compute-kpis for 100,000 learners against the per-user loop',
  irt: 'the IRT engine against the committed mirt timings and a bare E-step loop',
  'irt-cli': 'the whole irt calibrate CLI (wall, peak RSS, read/fit/se/write) on 3 M, 1 M and 600k rows; CSV parse MB/s against a bare read',
  'update-theta': 'POST /analysis/irt/update-theta latency (p50/p95/p99) against the bare library call',
  'calibrate-stage': 'calibrate-irt end to end on 3 M observations in PostgreSQL against the offline irt calibrate CLI on the same rows',
  serve: 'irt serve req/s, p50/p99 (1 × 30, 100 × 30, 1000 × 40; new connection and keep-alive) and cold start against bare node:http',
}

const name = process.argv[2]
if (!name || !(name in BENCHES)) {
  console.error(`usage: npm run bench -- <name> [flags]   (or npm run bench:<name>)\n${Object.entries(BENCHES).map(([k, v]) => `  ${k.padEnd(13)} ${v}`).join('\n')}`)
  process.exit(name ? 2 : 0)
}
process.argv.splice(2, 1)
await import(`./${name}.js`)
