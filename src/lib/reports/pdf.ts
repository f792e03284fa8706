import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { runTool } from './spawn.js'
import { SeedopsError } from '../errors/index.js'

/** Flags of MACHINE-NOTES: no sandbox (containers), no network chatter, no header/footer. */
function chromiumArgs(profile: string, out: string, input: string): string[] {
  return [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-dev-shm-usage',
    `--user-data-dir=${profile}`,
    '--no-pdf-header-footer',
    `--print-to-pdf=${out}`,
    input,
  ]
}

/** Prints a self-contained HTML document to PDF with headless Chromium (about 1 s a page). */
export async function htmlToPdf(html: string, chromium: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'seedops-pdf-'))
  try {
    const input = join(dir, 'report.html')
    const out = join(dir, 'report.pdf')
    await writeFile(input, html)
    const { code, stderr } = await runTool(chromium, chromiumArgs(join(dir, 'profile'), out, pathToFileURL(input).href), {
      env: { ...process.env, HOME: dir },
      timeoutMs: opts.timeoutMs ?? 60_000,
      signal: opts.signal,
    })
    let pdf: Buffer
    try {
      pdf = await readFile(out)
    } catch {
      throw new SeedopsError(`Chromium produced no PDF (exit ${code}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`, {
        code: 'PDF_FAILED',
        suggestions: ['Run with --format html to skip PDF', `Check the browser runs: ${chromium} --headless --no-sandbox --version`],
      })
    }
    if (pdf.subarray(0, 4).toString('latin1') !== '%PDF') throw new SeedopsError('Chromium output is not a PDF', { code: 'PDF_FAILED' })
    return pdf
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
