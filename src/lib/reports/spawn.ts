import { spawn } from 'node:child_process'

/** Runs an external renderer (Chromium, Quarto) with a time limit and abort signal; keeps the stderr tail for the error message. */
export function runTool(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number; signal?: AbortSignal },
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ['ignore', 'ignore', 'pipe'], env: opts.env })
    let stderr = ''
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)))
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs)
    const onAbort = () => child.kill('SIGKILL')
    opts.signal?.addEventListener('abort', onAbort)
    child.on('error', reject)
    child.on('close', (c) => {
      clearTimeout(timer)
      opts.signal?.removeEventListener('abort', onAbort)
      resolve({ code: c, stderr })
    })
  })
}
