// A stage run in a child process without the CLI around it (the kill trials start many; oclif's start
// costs more than most stages' write): node stage-child.mjs <stage> <asOf> '<given options JSON>'.
// Same runner, same database code as `seedops run <stage>` (built dist/), logs on stderr, exit 0/1.
import { join } from 'node:path'
import process from 'node:process'
const dist = join(import.meta.dirname, '..', '..', '..', 'dist', 'src', 'lib')
const [stageId, asOf, given = '{}'] = process.argv.slice(2)
const { openDb } = await import(join(dist, 'db', 'index.js'))
const { loadStages, getStage } = await import(join(dist, 'stages', 'all.js'))
const { resolveStageParams } = await import(join(dist, 'stages', 'options.js'))
const { runWithPrerequisites } = await import(join(dist, 'stages', 'chain.js'))
const { createLogger } = await import(join(dist, 'output', 'index.js'))
await loadStages()
const stage = getStage(stageId)
const db = await openDb({ databaseUrl: process.env.DATABASE_URL, home: process.env.SEEDOPS_HOME })
try {
  const { report } = await runWithPrerequisites(db, stage, resolveStageParams(stage, JSON.parse(given), process.env), { asOf, dryRun: false, logger: createLogger({}), env: process.env })
  process.stderr.write(`child: run #${report.runId} ${report.status}\n`)
  process.exitCode = report.status === 'succeeded' ? 0 : 1
} catch (e) {
  process.stderr.write(`child: ${e?.code ?? ''} ${e?.message ?? e}\n`)
  process.exitCode = 1
} finally {
  await db.close()
}
