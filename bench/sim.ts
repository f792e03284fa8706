/** xoshiro128** (Blackman & Vigna) — small, fast, seedable — with Box–Muller normals: every benchmark's simulated data. */
export function rng(seed: number) {
  let a = seed >>> 0 || 1
  let b = 0x9e3779b9
  let c = 0x243f6a88
  let d = 0xb7e15162
  const next = () => {
    const t = b << 9
    let r = Math.imul(b, 5)
    r = Math.imul((r << 7) | (r >>> 25), 9)
    c ^= a
    d ^= b
    b ^= c
    a ^= d
    c ^= t
    d = (d << 11) | (d >>> 21)
    return (r >>> 0) / 4294967296
  }
  for (let i = 0; i < 20; i++) next()
  let spare: number | null = null
  const normal = () => {
    if (spare !== null) {
      const s = spare
      spare = null
      return s
    }
    let u = 0
    while (u === 0) u = next()
    const v = next()
    const r = Math.sqrt(-2 * Math.log(u))
    spare = r * Math.sin(2 * Math.PI * v)
    return r * Math.cos(2 * Math.PI * v)
  }
  return { next, normal }
}

/** Simulated responses, persons in order, each answering k distinct items of the bank (all when k = J). */
export interface Sim {
  person: Int32Array
  item: Int32Array
  resp: Uint8Array
  a: Float64Array
  b: Float64Array
  c: Float64Array
  nP: number
  J: number
}

export function simulate(seed: number, nP: number, J: number, k: number, threePL: boolean): Sim {
  const r = rng(seed)
  const a = new Float64Array(J)
  const b = new Float64Array(J)
  const c = new Float64Array(J)
  for (let j = 0; j < J; j++) {
    a[j] = Math.exp(0.25 * r.normal())
    b[j] = r.normal()
    c[j] = threePL ? 0.05 + 0.2 * r.next() : 0
  }
  const m = nP * k
  const person = new Int32Array(m)
  const item = new Int32Array(m)
  const resp = new Uint8Array(m)
  const perm = Int32Array.from({ length: J }, (_, j) => j)
  let o = 0
  for (let i = 0; i < nP; i++) {
    const th = r.normal()
    if (k < J) {
      // Partial Fisher–Yates: k distinct items.
      for (let t = 0; t < k; t++) {
        const s = t + Math.floor(r.next() * (J - t))
        const tmp = perm[t]
        perm[t] = perm[s]
        perm[s] = tmp
      }
    }
    for (let t = 0; t < k; t++) {
      const j = k < J ? perm[t] : t
      const p = c[j] + (1 - c[j]) / (1 + Math.exp(-a[j] * (th - b[j])))
      person[o] = i
      item[o] = j
      resp[o] = r.next() < p ? 1 : 0
      o++
    }
  }
  return { person, item, resp, a, b, c, nP, J }
}
