import { Command, Flags, Interfaces } from '@oclif/core'
import { createLogger, type Logger, errColor } from '../lib/output/index.js'
import { EXIT, SeedopsError, translateError, redact } from '../lib/errors/index.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>

/**
 * Every seedops command extends this. `run()` returns the typed result; with --json it is
 * printed as one document `{status, result, warnings}` on stdout, otherwise the command renders
 * for humans through `render()`. Errors print `Error (CODE): message` and a "Try this:" list on
 * stderr and exit 1 (failure) or 2 (usage); with --json the error is the document.
 */
export abstract class BaseCommand<T extends typeof Command = typeof Command> extends Command {
  static override enableJsonFlag = false
  static override baseFlags = {
    json: Flags.boolean({ description: 'Print one JSON document {status, result, warnings} on stdout.', helpGroup: 'GLOBAL' }),
    quiet: Flags.boolean({ char: 'q', description: 'Only warnings and errors on stderr.', helpGroup: 'GLOBAL' }),
    verbose: Flags.boolean({ description: 'Debug logging on stderr.', helpGroup: 'GLOBAL' }),
  }

  protected warnings: string[] = []
  protected logger!: Logger
  protected jsonMode = false
  /** Set by commands whose result means failure (e.g. a failed verify check) without throwing. */
  protected failed = false

  override async init(): Promise<void> {
    await super.init()
    this.jsonMode = this.argv.includes('--json')
    const quiet = this.argv.includes('--quiet') || this.argv.includes('-q')
    this.logger = createLogger({
      quiet,
      verbose: this.argv.includes('--verbose'),
      onWarn: (m) => this.warnings.push(redact(m)),
    })
  }

  /** Human rendering of the result; default prints nothing. */
  protected render(_result: unknown): void {}

  override async _run<R>(): Promise<R> {
    let result: unknown
    try {
      await this.init()
      result = await this.run()
    } catch (e) {
      await this.handleFailure(e)
      return undefined as R
    } finally {
      await this.finally(undefined).catch(() => {})
    }
    if (this.jsonMode) {
      process.stdout.write(JSON.stringify({ status: this.failed ? EXIT.FAILURE : EXIT.OK, result, warnings: this.warnings }, null, 2) + '\n')
    } else {
      this.render(result)
    }
    if (this.failed) process.exitCode = EXIT.FAILURE
    return result as R
  }

  private async handleFailure(e: unknown): Promise<void> {
    // oclif's own parse errors (unknown flag, missing arg) are usage errors: exit 2.
    const anyErr = e as { oclif?: { exit?: number }; message?: string; code?: string }
    let err: SeedopsError
    if (anyErr && anyErr.oclif && anyErr.code === 'EEXIT') {
      process.exitCode = anyErr.oclif.exit ?? 0
      return
    }
    if (anyErr && anyErr.oclif && !(e instanceof SeedopsError)) {
      err = new SeedopsError(redact(anyErr.message ?? String(e)), {
        code: 'USAGE',
        exitCode: EXIT.USAGE,
        suggestions: [`Run: seedops ${this.id?.replace(/:/g, ' ') ?? ''} --help`],
      })
    } else {
      err = translateError(e)
    }
    if (this.jsonMode) {
      process.stdout.write(
        JSON.stringify(
          {
            status: err.exitCode,
            name: err.code,
            message: err.message,
            code: err.code,
            exitCode: err.exitCode,
            suggestions: err.suggestions,
            data: err.data,
            warnings: this.warnings,
          },
          null,
          2,
        ) + '\n',
      )
    } else if (this.logger?.format === 'json' && this.logger.error) {
      // LOG_FORMAT=json: the error is one more JSON line, not the terminal's block.
      this.logger.error(err.message, { code: err.code, exitCode: err.exitCode, suggestions: err.suggestions })
    } else {
      process.stderr.write(errColor.red(`Error (${err.code}): ${err.message}`) + '\n')
      if (err.suggestions.length) {
        process.stderr.write('\nTry this:\n' + err.suggestions.map((s) => `  ${s}`).join('\n') + '\n')
      }
      if (err.code === 'INTERNAL' && (process.env.SEEDOPS_DEBUG || this.argv.includes('--verbose'))) {
        const c = (err.cause as Error | undefined)?.stack
        if (c) process.stderr.write(redact(c) + '\n')
      }
    }
    process.exitCode = err.exitCode
  }
}
