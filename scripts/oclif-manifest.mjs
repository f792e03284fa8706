#!/usr/bin/env node
// Writes oclif.manifest.json after the TypeScript build (npm run build). Without it oclif imports
// every command module (and with them the Kubernetes client, the AWS SDK, pg …) on each start just
// to list them: ~1.5 s before any command runs. With it, a run imports only its own command.
// This is what the `oclif manifest` command of the oclif dev tool does, with the library we already have.
import { writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Plugin } from '@oclif/core'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const plugin = new Plugin({ root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true })
await plugin.load()
const n = Object.keys(plugin.manifest.commands).length
if (n === 0) {
  console.error('oclif manifest: no commands found (was the TypeScript build run?)')
  process.exit(1)
}
writeFileSync(join(root, 'oclif.manifest.json'), JSON.stringify(plugin.manifest))
