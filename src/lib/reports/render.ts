import { usageError } from '../errors/index.js'
import type { Logger } from '../output/index.js'
import { renderHtml } from './html.js'
import type { ReportData } from './model.js'
import { htmlToPdf } from './pdf.js'
import { renderWithQuarto } from './quarto.js'
import { findChromium, findQuarto } from './tools.js'

export type ReportFormat = 'html' | 'pdf'
export type RendererChoice = 'auto' | 'builtin' | 'quarto'

export const CONTENT_TYPES: Record<ReportFormat, string> = { html: 'text/html; charset=utf-8', pdf: 'application/pdf' }

/** What renders the reports of a run, decided once at its start. */
export interface Renderers {
  renderer: 'builtin' | 'quarto'
  chromium: string | null
  quarto: string | null
  render(d: ReportData, format: ReportFormat, signal?: AbortSignal): Promise<Buffer>
}

/**
 * Picks the renderer: Quarto when asked for (or on auto when it is on PATH), else the built-in
 * HTML renderer, with Chromium for PDF. Missing tools are reported before anything is rendered.
 */
export function resolveRenderers(choice: RendererChoice, formats: ReportFormat[], logger: Logger, env: NodeJS.ProcessEnv = process.env): Renderers {
  const quarto = findQuarto(env)
  let renderer: 'builtin' | 'quarto'
  if (choice === 'quarto') {
    if (!quarto) throw usageError('--renderer quarto: quarto is not on PATH', ['Use the built-in renderer: --renderer builtin (or auto)', 'Or run the report image (Dockerfile target `report`), or set QUARTO_PATH'])
    renderer = 'quarto'
  } else if (choice === 'auto' && quarto) {
    renderer = 'quarto'
  } else {
    if (choice === 'auto') logger.info('generate-report: quarto not found on PATH; using the built-in HTML renderer')
    renderer = 'builtin'
  }
  const chromium = renderer === 'builtin' && formats.includes('pdf') ? findChromium(env) : null
  if (renderer === 'builtin' && formats.includes('pdf') && !chromium) {
    throw usageError('PDF needs a headless Chromium and none was found (chromium, chromium-headless-shell on PATH, or CHROMIUM_PATH)', [
      'Install it: apt-get install chromium-headless-shell (or chromium)',
      'Or render HTML only: --format html',
      'Or run the report image (Dockerfile target `report`)',
    ])
  }
  return {
    renderer,
    chromium,
    quarto,
    async render(d, format, signal) {
      if (renderer === 'quarto') return renderWithQuarto(d, format, quarto!, { signal })
      const html = renderHtml(d)
      if (format === 'html') return Buffer.from(html, 'utf8')
      return htmlToPdf(html, chromium!, { signal })
    },
  }
}
