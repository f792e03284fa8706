import { Command, Errors, Flags, Interfaces } from '@oclif/core'
import { createLogger, type Logger, errColor } from '../lib/output/index.js'
import { EXIT, SeedopsError, translateError, redact } from '../lib/errors/index.js'

/**
 * Every seedops command extends this. `run()` returns the typed result. With --json (oclif's own
 * flag: `enableJsonFlag`) oclif prints what `toSuccessJson` makes of it, one document
 * `{status, result, warnings}` on stdout; otherwise the command renders for humans through
 * `render()`. Errors print `Error (CODE): message` and a "Try this:" list on stderr and exit
 * 1 (failure) or 2 (usage); with --json the error is the document `toErrorJson` makes.
 */
export abstract class BaseCommand extends Command {
  static override enableJsonFlag = true
  static override baseFlags = {
    // Replaces oclif's own --json definition (same flag; this description says what it prints).
    json: Flags.boolean({ description: 'Print one JSON document {status, result, warnings} on stdout.', helpGroup: 'GLOBAL' }),
    quiet: Flags.boolean({ char: 'q', description: 'Only warnings and errors on stderr.', helpGroup: 'GLOBAL' }),
    verbose: Flags.boolean({ description: 'Debug logging on stderr.', helpGroup: 'GLOBAL' }),
  }

  protected warnings: string[] = []
  protected logger!: Logger
  /** Set by commands whose result means failure (e.g. a failed verify check) without throwing. */
  protected failed = false
  private errored = false

  /** --json (or SEEDOPS_CONTENT_TYPE=json), as oclif decides it. */
  protected get jsonMode(): boolean {
    return this.jsonEnabled()
  }

  override async init(): Promise<void> {
    await super.init()
    // Before parse (which may fail): the logger must exist to report that failure.
    const quiet = this.argv.includes('--quiet') || this.argv.includes('-q')
    this.logger = createLogger({
      quiet,
      verbose: this.argv.includes('--verbose'),
      onWarn: (m) => this.warnings.push(redact(m)),
    })
  }

  /** Human rendering of the result; default prints nothing. */
  protected render(_result: unknown): void {}

  /** oclif's run loop (init, run, catch, finally, the JSON document); then the human rendering and the exit code. */
  override async _run<R>(): Promise<R> {
    const result = await super._run<R>()
    if (this.errored) return result
    // oclif prints a document only for a truthy result; ours always has one.
    if (this.jsonEnabled() && !result) this.logJson(this.toSuccessJson(result))
    if (!this.jsonEnabled()) this.render(result)
    if (this.failed) process.exitCode = EXIT.FAILURE
    return result
  }

  protected override toSuccessJson(result: unknown): { status: number; result: unknown; warnings: string[] } {
    return { status: this.failed ? EXIT.FAILURE : EXIT.OK, result, warnings: this.warnings }
  }

  protected override toErrorJson(e: unknown) {
    const err = this.toSeedopsError(e)
    return { status: err.exitCode, name: err.code, message: err.message, code: err.code, exitCode: err.exitCode, suggestions: err.suggestions, data: err.data, warnings: this.warnings }
  }

  /** oclif's parse errors (unknown flag, missing arg) are usage errors (exit 2); the rest is translated once. */
  private toSeedopsError(e: unknown): SeedopsError {
    const oclifErr = e as { oclif?: { exit?: number }; message?: string }
    if (oclifErr?.oclif && !(e instanceof SeedopsError)) {
      // One line: oclif's parse messages span lines ("Parsing --x \n\tExpected …\nSee more help with --help"); the suggestion below says the last part.
      const message = (oclifErr.message ?? String(e)).replace(/\n\s*See more help with --help\s*$/, '').split('\n').map((l) => l.trim()).filter(Boolean).join(': ')
      return new SeedopsError(redact(message), { code: 'USAGE', exitCode: EXIT.USAGE, suggestions: [`Run: seedops ${this.id?.replace(/:/g, ' ') ?? ''} --help`] })
    }
    return translateError(e)
  }

  /** Replaces oclif's (which rethrows to its own printer): one error document or block, one exit code. */
  protected override async catch(e: Interfaces.CommandError): Promise<void> {
    this.errored = true
    // this.exit(n) inside a command: an exit, not an error.
    if (e instanceof Errors.ExitError) {
      process.exitCode = e.oclif.exit ?? 0
      return
    }
    const err = this.toSeedopsError(e)
    process.exitCode = err.exitCode
    if (this.jsonEnabled()) {
      this.logJson(this.toErrorJson(e))
    } else if (this.logger?.format === 'json' && this.logger.error) {
      // LOG_FORMAT=json: the error is one more JSON line, not the terminal's block.
      this.logger.error(err.message, { code: err.code, exitCode: err.exitCode, suggestions: err.suggestions })
    } else {
      process.stderr.write(errColor.red(`Error (${err.code}): ${err.message}`) + '\n')
      if (err.suggestions.length) process.stderr.write('\nTry this:\n' + err.suggestions.map((s) => `  ${s}`).join('\n') + '\n')
      if (err.code === 'INTERNAL' && (process.env.SEEDOPS_DEBUG || this.argv.includes('--verbose'))) {
        const c = (err.cause as Error | undefined)?.stack
        if (c) process.stderr.write(redact(c) + '\n')
      }
    }
  }
}
