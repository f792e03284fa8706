// The stage registry's contents: import each stage module here (one line per stage).
import { registerStage, getStage } from './registry.js'

let loaded = false
export async function loadStages() {
  if (loaded) return
  loaded = true
  const mods: { default: Parameters<typeof registerStage>[0] }[] = await Promise.all([
    import('../features/stage.js'),
    import('../irt-stage/calibrate-stage.js'),
    import('../irt-stage/update-theta.js'),
    import('../kpi/stage.js'),
    import('../kpi/inactivity.js'),
    import('../reports/stage.js'),
  ])
  for (const m of mods) registerStage(m.default)
}

export { getStage }
