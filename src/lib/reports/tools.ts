import { accessSync, constants, statSync } from 'node:fs'
import { delimiter, isAbsolute, join } from 'node:path'

/** Finds an executable: an absolute path as is, else the first match on PATH. */
export function findExecutable(names: string[], env: NodeJS.ProcessEnv = process.env): string | null {
  for (const name of names) {
    if (!name) continue
    if (isAbsolute(name)) {
      if (isExec(name)) return name
      continue
    }
    for (const dir of (env.PATH ?? '').split(delimiter)) {
      if (!dir) continue
      const p = join(dir, name)
      if (isExec(p)) return p
    }
  }
  return null
}

function isExec(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false
    accessSync(p, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** Headless Chromium for PDF: CHROMIUM_PATH, else chromium, chromium-headless-shell… on PATH. */
export function findChromium(env: NodeJS.ProcessEnv = process.env): string | null {
  return findExecutable([env.CHROMIUM_PATH ?? '', 'chromium', 'chromium-headless-shell', 'chromium-browser', 'google-chrome', 'google-chrome-stable', 'headless_shell'], env)
}

/** Quarto: QUARTO_PATH, else quarto on PATH. */
export function findQuarto(env: NodeJS.ProcessEnv = process.env): string | null {
  return findExecutable([env.QUARTO_PATH ?? '', 'quarto'], env)
}
