import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'

/**
 * Debian's prometheus / prometheus-pushgateway, started by the tests themselves on free loopback
 * ports with temp data dirs (never 9090/9091, never systemd), stopped after.
 */

/** The binary's path; when it is missing: throws under CI, else returns null (the caller skips, naming the package). */
export function findTool(name: string, debianPackage: string): string | null {
  for (const dir of ['/usr/bin', '/usr/local/bin', ...(process.env.PATH ?? '').split(delimiter)]) {
    const p = join(dir, name)
    if (dir && existsSync(p)) return p
  }
  const msg = `${name} not found: install the Debian package ${debianPackage} (apt-get install ${debianPackage})`
  if (process.env.CI) throw new Error(msg)
  console.warn(`skipping: ${msg}`)
  return null
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

export interface RunningTool {
  url: string
  port: number
  dir: string
  child: ChildProcess
  output: () => string
  stop: () => Promise<void>
}

/** Starts `bin` with args built from its port and a temp dir, and waits until GET `readyPath` answers 200. */
export async function startTool(bin: string, args: (port: number, dir: string) => string[], readyPath = '/-/ready', timeoutMs = 30_000): Promise<RunningTool> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'seedops-prom-'))
  const child = spawn(bin, args(port, dir), { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (out += d))
  const url = `http://127.0.0.1:${port}`
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))])
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    }
    rmSync(dir, { recursive: true, force: true })
  }
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (child.exitCode !== null) {
      await stop()
      throw new Error(`${bin} exited with ${child.exitCode}:\n${out}`)
    }
    try {
      if ((await fetch(url + readyPath)).status === 200) break
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`${bin} not ready on ${url} after ${timeoutMs} ms:\n${out}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  return { url, port, dir, child, output: () => out, stop }
}

/** A Prometheus with the given config (written to its temp dir as prometheus.yml). */
export async function startPrometheus(bin: string, configYaml: string): Promise<RunningTool> {
  const { writeFileSync } = await import('node:fs')
  return startTool(bin, (port, dir) => {
    writeFileSync(join(dir, 'prometheus.yml'), configYaml)
    return [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn']
  })
}

/** A Pushgateway (no persistence: Debian's default persistence file is /var/lib/prometheus/pushgateway.data). */
export function startPushgateway(bin: string): Promise<RunningTool> {
  return startTool(bin, (port) => [`--web.listen-address=127.0.0.1:${port}`, '--persistence.file=', '--log.level=warn'])
}
