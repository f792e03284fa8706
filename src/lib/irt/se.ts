import type { CalibrationResult } from './calibrate.js'
export function attachStandardErrors(_res: CalibrationResult, _counts: Float64Array, _totals: Float64Array): void {}
