import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SeedopsError } from '../errors/index.js'
import { packageRoot } from '../paths.js'
import type { ReportData } from './model.js'
import { runTool } from './spawn.js'
import { churnBar, dailyChart, goalGauge, thetaChart, topicChart } from './svg.js'

export function quartoTemplateDir(): string {
  return join(packageRoot(), 'reports', 'quarto')
}

/** The JSON params file of the Quarto template: the report data plus the chart files beside it. */
export function quartoParams(d: ReportData): ReportData & { charts: Record<string, string | null> } {
  return {
    ...d,
    charts: { theta: d.theta.length ? 'charts/theta.svg' : null, daily: 'charts/daily.svg', topics: d.topics.length ? 'charts/topics.svg' : null, gauge: 'charts/gauge.svg', churn: 'charts/churn.svg' },
  }
}

/**
 * Renders the report with Quarto: copies reports/quarto/ to a temp folder, writes the charts and
 * report-data.json there, runs `quarto render` (HTML with embedded resources, or PDF via Typst).
 * Not exercised by the test suite: Quarto is not installable on the build machines.
 */
export async function renderWithQuarto(d: ReportData, format: 'html' | 'pdf', quarto: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'seedops-quarto-'))
  try {
    for (const f of ['weekly_report.qmd', 'weekly_report.lua']) await copyFile(join(quartoTemplateDir(), f), join(dir, f))
    await mkdir(join(dir, 'charts'))
    const charts: Record<string, string | null> = { theta: thetaChart(d), daily: dailyChart(d), topics: topicChart(d.topics), gauge: goalGauge(d.goal), churn: churnBar(d.churn) }
    for (const [name, svg] of Object.entries(charts)) if (svg) await writeFile(join(dir, 'charts', `${name}.svg`), svg)
    await writeFile(join(dir, 'report-data.json'), JSON.stringify(quartoParams(d), null, 2))
    const out = format === 'html' ? 'report.html' : 'report.pdf'
    const args = ['render', 'weekly_report.qmd', '--to', format === 'html' ? 'html' : 'typst', '--output', out, '-M', 'params-file:report-data.json']
    const { code, stderr } = await runTool(quarto, args, {
      cwd: dir,
      env: { ...process.env, HOME: process.env.HOME ?? dir },
      timeoutMs: opts.timeoutMs ?? 120_000,
      signal: opts.signal,
    })
    if (code !== 0) {
      throw new SeedopsError(`quarto render failed (exit ${code}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`, {
        code: 'QUARTO_FAILED',
        suggestions: ['Use the built-in renderer: --renderer builtin', `Check the template renders by hand: cd ${quartoTemplateDir()} && quarto render weekly_report.qmd`],
      })
    }
    return await readFile(join(dir, out))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
