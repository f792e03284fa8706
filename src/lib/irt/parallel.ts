import type { EstepInput } from './estep.js'
import type { EstepRunner } from './runner.js'

export function chooseThreads(_input: EstepInput, threads: number | 'auto'): number {
  return threads === 'auto' ? 1 : threads
}

export async function parallelRunner(_input: EstepInput, _nItems: number, _threads: number): Promise<EstepRunner | null> {
  return null
}
