/**
 * What `irt serve` allows a client, by default (each settable: run.ts reads the environment). A
 * module of its own so run.ts can check the settings without loading the server at start.
 */

/** IRT_MAX_BODY_BYTES: 64 MiB, a calibration of ~1 M observations as JSON; larger bodies get 413. */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
/** IRT_HEADERS_TIMEOUT_MS: a client has this long to send its request line and headers (slow-loris clients are cut after it, 408). */
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000
/** IRT_REQUEST_TIMEOUT_MS: …and this long for the whole request, body included (64 MiB then needs ~1 MiB/s); answering time is not counted. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000
