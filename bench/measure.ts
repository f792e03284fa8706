import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'

export interface CommandMeasure {
  wallSeconds: number
  /** Peak RSS in MB as GNU time reports it ("Maximum resident set size"), null without /usr/bin/time. */
  peakRssMB: number | null
  exitCode: number
  stdout: string
  stderr: string
}

/**
 * Runs a whole command the way a user types it (process start included) under `/usr/bin/time -v`
 * and returns wall time and peak RSS. Throws when the command fails, with its stderr.
 */
export async function timeCommand(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; allowFail?: boolean } = {}): Promise<CommandMeasure> {
  const haveTime = existsSync('/usr/bin/time')
  const argv = haveTime ? ['-v', cmd, ...args] : args
  const t0 = performance.now()
  const child = spawn(haveTime ? '/usr/bin/time' : cmd, argv, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()))
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
  const exitCode: number = await new Promise((resolve) => child.on('close', (code) => resolve(code ?? 1)))
  const wallSeconds = (performance.now() - t0) / 1000
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr)
  const peakRssMB = m ? Number(m[1]) / 1024 : null
  if (haveTime) stderr = stderr.replace(/\n?\tCommand being timed:[\s\S]*$/, '')
  if (exitCode !== 0 && !opts.allowFail) throw new Error(`${cmd} ${args.join(' ')} exited ${exitCode}:\n${stderr.slice(-2000)}`)
  return { wallSeconds, peakRssMB, exitCode, stdout, stderr }
}
