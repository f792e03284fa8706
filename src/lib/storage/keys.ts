/**
 * Object keys of the weekly reports: `reports/{user}/{week}/report.{fmt}`. User ids are untrusted
 * input: the segment is percent-encoded (encodeURIComponent, plus `.`/`..` spelled `%2E`), so no
 * id can add a path level, climb out of the folder, or carry characters S3 treats specially.
 * Ordinary ids (letters, digits, `-`, `_`, `.`) stay as they are.
 */
export function keySegment(value: string): string {
  const enc = encodeURIComponent(value).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())
  return enc === '.' || enc === '..' || enc === '' ? enc.replace(/\./g, '%2E') || '%00' : enc
}

export function reportKey(userId: string, weekStart: string, format: string): string {
  return `reports/${keySegment(userId)}/${weekStart}/report.${format}`
}

/** Rejects keys that could escape a folder (defence in depth for the local store). */
export function assertSafeKey(key: string): void {
  if (key === '' || key.startsWith('/') || key.split('/').some((s) => s === '' || s === '.' || s === '..') || key.includes('\\') || key.includes('\0')) {
    throw new Error(`unsafe object key ${JSON.stringify(key)}`)
  }
}
