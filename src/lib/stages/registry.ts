import type { Stage } from './types.js'

/** All stages by id. Each stage module registers itself here when it lands. */
const stages = new Map<string, Stage<any, any>>()

export function registerStage(stage: Stage<any, any>): void {
  if (stages.has(stage.id)) throw new Error(`stage ${stage.id} registered twice`)
  stages.set(stage.id, stage)
}

export function getStage(id: string): Stage<any, any> | undefined {
  return stages.get(id)
}
