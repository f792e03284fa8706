import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { onTestFinished } from 'vitest'
import { scanRun, secretsOf } from '../faults/support/secret-scan.js'

export const ROOT = join(import.meta.dirname, '..', '..')
export const BIN = join(ROOT, 'bin', 'run.js')

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

function childEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1', DATABASE_URL: undefined, SEEDOPS_HOME: undefined, ...extra }
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k]
  return env as Record<string, string>
}

/**
 * Runs the built CLI (npm test builds first) as a user would: a separate process. Every run's stdout and
 * stderr are scanned for secrets (test/faults/support/secret-scan.ts): a hit rejects, naming the variable.
 */
export function runCli(
  args: string[],
  opts: { env?: Record<string, string | undefined>; input?: string; timeoutMs?: number; cwd?: string; /** More values the run must not print (e.g. held in the cluster), by name. */ secrets?: Record<string, string> } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env = childEnv(opts.env)
    const child = spawn(process.execPath, [BIN, ...args], { env: env as NodeJS.ProcessEnv, cwd: opts.cwd ?? ROOT })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      try {
        scanRun({ stdout, stderr }, [...secretsOf(env, args, opts.input), ...Object.entries(opts.secrets ?? {}).map(([name, value]) => ({ name, value }))], args)
      } catch (e) {
        reject(e)
        return
      }
      resolve({ code, signal, stdout, stderr })
    })
    if (opts.input !== undefined) child.stdin.end(opts.input)
    else child.stdin.end()
  })
}

/** Everything a stream hands its readers ('data' is emitted for every chunk read, in any mode), unchanged for them. */
function tap(stream: Readable): () => string {
  let seen = ''
  const emit = stream.emit.bind(stream)
  stream.emit = ((event: string | symbol, ...rest: unknown[]) => {
    if (event === 'data') seen += String(rest[0])
    return emit(event, ...rest)
  }) as typeof stream.emit
  return () => seen
}

/**
 * Starts the CLI and returns the child, for tests that kill it or run two at once. What the test reads from
 * it (and what Node flushes from unread streams at exit) is scanned for secrets: at the end of the test that
 * started it, and again when the process closes — after its test, a hit is an uncaught error that fails the run.
 */
export function spawnCli(args: string[], env: Record<string, string | undefined> = {}): ChildProcessWithoutNullStreams {
  const full = childEnv(env)
  const child = spawn(process.execPath, [BIN, ...args], { env: full as NodeJS.ProcessEnv, cwd: ROOT })
  const out = tap(child.stdout)
  const err = tap(child.stderr)
  const secrets = secretsOf(full, args)
  let testOpen = false
  let failure: unknown
  try {
    onTestFinished(() => {
      testOpen = false
      if (failure) throw failure
      if (child.exitCode === null && child.signalCode === null) scanRun({ stdout: out(), stderr: err() }, secrets, args, { count: false })
    })
    testOpen = true
  } catch {
    // Started outside a test (beforeAll): only the close check applies.
  }
  child.on('close', () => {
    try {
      scanRun({ stdout: out(), stderr: err() }, secrets, args)
    } catch (e) {
      if (testOpen) failure = e
      else throw e
    }
  })
  return child
}

/**
 * Runs the CLI on a pseudo-terminal (prompts only appear on a TTY), answering each prompt that contains
 * answers[i][0] with answers[i][1]; resolves with the exit status and what the terminal showed. The terminal
 * text is scanned like any run's output, the typed answers counting as secrets too.
 */
export function runCliOnPty(args: string[], answers: [string, string][], opts: { env?: Record<string, string | undefined>; timeoutS?: number } = {}): Promise<{ status: number; stdout: string }> {
  const env = childEnv(opts.env)
  const spec = { argv: [process.execPath, BIN, ...args], answers, timeout: opts.timeoutS ?? 120 }
  const secrets = [...secretsOf(env, args), ...answers.filter(([, typed]) => typed.length >= 8).map(([prompt, typed]) => ({ name: `the answer typed at "${prompt}"`, value: typed }))]
  // Asynchronously: a stand-in serving this run may live in the test's process and must keep answering.
  return new Promise((resolve, reject) => {
    execFile('python3', [join(ROOT, 'test', 'support', 'kube-standin', 'pty-run.py'), JSON.stringify(spec)], { env, encoding: 'utf8', timeout: (spec.timeout + 30) * 1000 }, (err, stdout) => {
      try {
        scanRun({ terminal: stdout }, secrets, args)
      } catch (e) {
        reject(e)
        return
      }
      resolve({ status: err ? ((err as { code?: number }).code ?? 1) : 0, stdout })
    })
  })
}
