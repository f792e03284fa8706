/**
 * The one error type of seedops. Every expected failure is a SeedopsError with a stable
 * code, an exit code (1 failure, 2 usage) and next steps for the user. Anything else that
 * escapes is a bug and is reported as such by the base command.
 */
export const EXIT = { OK: 0, FAILURE: 1, USAGE: 2, SIGINT: 130, SIGTERM: 143 } as const
export type ExitCode = (typeof EXIT)[keyof typeof EXIT]

export interface SeedopsErrorOptions {
  code: string
  exitCode?: ExitCode
  suggestions?: string[]
  cause?: unknown
  /** Structured details that are safe to print (never secrets). */
  data?: Record<string, unknown>
}

export class SeedopsError extends Error {
  readonly code: string
  readonly exitCode: ExitCode
  readonly suggestions: string[]
  readonly data?: Record<string, unknown>

  constructor(message: string, opts: SeedopsErrorOptions) {
    super(message, { cause: opts.cause })
    this.name = 'SeedopsError'
    this.code = opts.code
    this.exitCode = opts.exitCode ?? EXIT.FAILURE
    this.suggestions = opts.suggestions ?? []
    this.data = opts.data
  }
}

export function usageError(message: string, suggestions: string[] = []): SeedopsError {
  return new SeedopsError(message, { code: 'USAGE', exitCode: EXIT.USAGE, suggestions })
}

export { translateError, redact, registerSecret } from './translate.js'
