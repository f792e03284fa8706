#!/usr/bin/env node
// `irt serve` starts without oclif (src/lib/irt-service/cli.ts says why); anything its parser does not take goes to oclif.
const argv = process.argv.slice(2)
const fast = argv[0] === 'irt' && argv[1] === 'serve' ? await import('../dist/src/lib/irt-service/cli.js') : undefined
const serve = fast?.parseServeArgv(argv.slice(2))
if (serve) {
  await fast.serveFromArgv(serve)
} else {
  const { execute } = await import('@oclif/core')
  await execute({ dir: import.meta.url })
}
