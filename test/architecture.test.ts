/**
 * The dependency rules of docs/ARCHITECTURE.md, checked on every import (static, `export … from`,
 * type-only and dynamic `import()`) of every file under src/. A failure names the file and the import.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

const ROOT = resolve(import.meta.dirname, '..')
const SRC = join(ROOT, 'src')

/** Infrastructure: no domain knowledge; each may import only the infrastructure listed for it. */
const INFRA: Record<string, string[]> = {
  errors: [],
  paths: [],
  output: ['errors'],
  config: ['errors'],
  db: ['config', 'errors', 'output', 'paths'],
  kube: ['config', 'errors', 'output', 'paths'],
  storage: ['config', 'errors', 'output'],
  metrics: ['config', 'errors', 'output'],
}

/**
 * Domain services may import any infrastructure, and another domain only along these edges.
 * Each edge says why; an edge no longer used fails the last test, so the list stays the truth.
 */
const DOMAIN_EDGES: Record<string, string> = {
  'adopt -> status': 'adopt --prune-legacy asks (runlog.ts → status) whether each stage has succeeded',
  'demo -> stages': 'the demo runs the real stage chain on its generated data',
  'doctor -> adopt': 'doctor reads the adoption record and the predecessor secret names adopt maps',
  'doctor -> checks': 'doctor checks use the common check model and runner',
  'doctor -> stages': 'doctor reads the run log (last success, failures, cadence)',
  'features -> irt': 'aggregate-features scores θ with the IRT engine',
  'features -> irt-stage': 'aggregate-features reads the current item parameters (ITEM_PARAMS_SQL)',
  'features -> stages': 'aggregate-features is a stage',
  'irt-service -> irt': 'irt serve scores with the IRT engine',
  'irt-service -> irt-stage': 'irt serve runs update-theta in-process (loaded on first use)',
  'irt-service -> stages': 'irt serve runs update-theta through the stage runner',
  'irt-stage -> irt': 'calibrate-irt and update-theta run the IRT engine',
  'irt-stage -> stages': 'calibrate-irt and update-theta are stages',
  'kpi -> stages': 'compute-kpis and detect-inactivity are stages',
  'reports -> kpi': 'generate-report takes the same --users option as compute-kpis',
  'reports -> stages': 'generate-report is a stage',
  'stages -> features': 'the registry (all.ts) loads each stage module',
  'stages -> irt-stage': 'the registry (all.ts) loads each stage module',
  'stages -> kpi': 'the registry loads each stage module; the chain runs compute-kpis first',
  'stages -> reports': 'the registry (all.ts) loads each stage module',
  'status -> doctor': 'status reuses doctor\'s age/target formatting and IRT Deployment names',
  'status -> stages': 'status reads the run log',
  'verify -> checks': 'verify checks use the common check model and runner',
  'verify -> irt-stage': 'verify irt reads the parameter history and drift',
  'verify -> kpi': 'verify kpis uses the KPI week definition',
  'verify -> reports': 'verify reports parses the report formats as the stage does',
  'verify -> stages': 'verify reads the run log for as-of dates and freshness',
}

type Layer =
  | { kind: 'commands' }
  | { kind: 'cli' }
  | { kind: 'infra'; name: string }
  | { kind: 'domain'; name: string }
  | { kind: 'other'; name: string }

function layerOf(file: string): Layer {
  const parts = relative(ROOT, file).split(/[\\/]/)
  if (parts[0] !== 'src') return { kind: 'other', name: parts[0] }
  if (parts[1] === 'commands') return { kind: 'commands' }
  if (parts[1] === 'cli') return { kind: 'cli' }
  if (parts[1] === 'lib') {
    const name = parts.length > 3 ? parts[2] : parts[2].replace(/\.[cm]?[jt]s$/, '')
    return name in INFRA ? { kind: 'infra', name } : { kind: 'domain', name }
  }
  return { kind: 'other', name: parts[1] }
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : /\.[cm]?ts$/.test(e.name) && !e.name.endsWith('.d.ts') ? [join(dir, e.name)] : [],
  )
}

interface Import { from: string; spec: string; target?: string }

/** Every module specifier of a file; relative ones resolved to the source file they name (.js → .ts). */
function importsOf(file: string): Import[] {
  const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true)
  return info.importedFiles.map(({ fileName: spec }) => ({
    from: relative(ROOT, file),
    spec,
    target: spec.startsWith('.') ? resolve(dirname(file), spec).replace(/\.([cm]?)js$/, '.$1ts') : undefined,
  }))
}

const FILES = walk(SRC)
const IMPORTS = FILES.flatMap(importsOf)
const show = (i: Import) => `${i.from} imports '${i.spec}'`

/** The offending imports, one line each, so a failure names file and import. */
function violations(rule: (i: Import, from: Layer, to: Layer | undefined) => string | undefined): string[] {
  const out: string[] = []
  for (const i of IMPORTS) {
    const why = rule(i, layerOf(join(ROOT, i.from)), i.target ? layerOf(i.target) : undefined)
    if (why) out.push(`${show(i)}: ${why}`)
  }
  return out
}

describe('architecture: the import rules of docs/ARCHITECTURE.md', () => {
  it('parses the imports of every src file (the rules below see the real graph)', () => {
    expect(FILES.length).toBeGreaterThan(100)
    expect(IMPORTS.some((i) => i.from === 'src/lib/stages/all.ts' && i.spec === '../kpi/stage.js')).toBe(true) // a dynamic import() is seen
    expect(IMPORTS.some((i) => i.spec === '@oclif/core')).toBe(true)
  })

  it('src/lib never imports @oclif/*, src/cli or src/commands', () => {
    expect(
      violations((i, from, to) => {
        if (from.kind !== 'infra' && from.kind !== 'domain') return undefined
        if (i.spec.startsWith('@oclif/')) return 'oclif belongs to src/cli and src/commands; take a plain options object'
        if (to?.kind === 'cli' || to?.kind === 'commands') return `lib must not import ${to.kind}`
        return undefined
      }),
    ).toEqual([])
  })

  it('src/cli never imports src/commands; no command imports another command', () => {
    expect(
      violations((i, from, to) => {
        if (to?.kind !== 'commands') return undefined
        if (from.kind === 'cli') return 'the CLI layer must not know the commands'
        if (from.kind === 'commands') return 'share through src/cli or src/lib, not another command'
        return undefined
      }),
    ).toEqual([])
  })

  it('infrastructure (db, kube, storage, output, errors, config, metrics, paths) imports no domain service and only the infrastructure listed for it', () => {
    expect(
      violations((_i, from, to) => {
        if (from.kind !== 'infra' || !to || (to.kind === 'infra' && to.name === from.name)) return undefined
        if (to.kind === 'infra') return INFRA[from.name].includes(to.name) ? undefined : `${from.name} may import only ${INFRA[from.name].join(', ') || 'nothing in src'}`
        return `infrastructure must not import ${to.kind === 'domain' ? `the domain service ${to.name}` : to.kind}`
      }),
    ).toEqual([])
  })

  it('a domain service imports another domain only along an allowed edge', () => {
    expect(
      violations((_i, from, to) => {
        if (from.kind !== 'domain' || to?.kind !== 'domain' || to.name === from.name) return undefined
        return `${from.name} -> ${to.name}` in DOMAIN_EDGES ? undefined : `no allowed edge ${from.name} -> ${to.name} (add it to DOMAIN_EDGES with its reason, or move the code)`
      }),
    ).toEqual([])
  })

  it('nothing under src imports test/ or bench/', () => {
    expect(violations((_i, _from, to) => (to?.kind === 'other' && (to.name === 'test' || to.name === 'bench') ? `src must not depend on ${to.name}/` : undefined))).toEqual([])
  })

  it('every allowed domain edge is still used (the list is the current truth)', () => {
    const used = new Set<string>()
    for (const i of IMPORTS) {
      const from = layerOf(join(ROOT, i.from))
      const to = i.target ? layerOf(i.target) : undefined
      if (from.kind === 'domain' && to?.kind === 'domain' && from.name !== to.name) used.add(`${from.name} -> ${to.name}`)
    }
    expect(Object.keys(DOMAIN_EDGES).filter((e) => !used.has(e))).toEqual([])
  })
})
