declare module 's3rver' {
  import type { Server } from 'node:http'
  export default class S3rver {
    constructor(opts: Record<string, unknown>)
    httpServer?: Server
    run(): Promise<{ address: string; port: number }>
    close(): Promise<void>
  }
}
