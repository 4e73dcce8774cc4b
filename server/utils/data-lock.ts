import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

// The embedded database (PGlite) and the embedded store live in the data folder, and two processes
// writing them would corrupt both: one process at a time holds `<dataDir>/natter.lock`, which names
// its pid. A lock whose process is gone (killed, crashed) is stale and taken over. The same process
// taking it again (a `nuxt dev` reload, its worker) keeps it. Plain Node, no Nitro imports: the
// dev-server module (modules/dev-server.ts) takes it too, before the port is bound.

export class DataDirLockedError extends Error {
  constructor(readonly dataDir: string, readonly pid: number) {
    super(`The data folder ${dataDir} is in use by another Natter (pid ${pid}). Stop it, or give this one `
      + `its own folder with NATTER_DATA_DIR (or real services: DATABASE_URL and REDIS_URL).`)
    this.name = 'DataDirLockedError'
  }
}

export function lockFile(dataDir: string): string {
  return join(dataDir, 'natter.lock')
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  }
  catch (error) {
    // EPERM: it exists, as another user's process.
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function holder(file: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8'), 10)
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  }
  catch {
    return undefined
  }
}

const held = new Set<string>()

/** Takes the data folder's lock for this process, or throws DataDirLockedError naming its holder. */
export function lockDataDir(dataDir: string): void {
  try {
    mkdirSync(dataDir, { recursive: true })
  }
  catch {
    // No folder can be made there, so no other process writes one either: nothing to guard. The
    // embedded backends fail to open it, and /api/ready says so (instead of a start that exits).
    return
  }
  const file = lockFile(dataDir)
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx' })
      break
    }
    catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    const pid = holder(file)
    if (pid === process.pid) break
    if (pid !== undefined && alive(pid)) throw new DataDirLockedError(dataDir, pid)
    // Stale (or half-written by a process that died writing it): remove it and try again.
    try {
      unlinkSync(file)
    }
    catch {
      // Another starter removed it first; the next attempt sees who won.
    }
  }
  if (holder(file) !== process.pid) throw new DataDirLockedError(dataDir, holder(file) ?? 0)
  if (held.size === 0) process.once('exit', () => held.forEach(dir => unlockDataDir(dir)))
  held.add(dataDir)
}

/** Gives the lock back, if this process holds it. */
export function unlockDataDir(dataDir: string): void {
  held.delete(dataDir)
  const file = lockFile(dataDir)
  if (holder(file) !== process.pid) return
  try {
    unlinkSync(file)
  }
  catch {
    // Already gone.
  }
}

/** Whether this process keeps state in the data folder: the embedded database or store. */
export function usesDataDir(env: NodeJS.ProcessEnv): boolean {
  return (env.NATTER_DATA_DIR !== 'memory://') && (!env.DATABASE_URL || !env.REDIS_URL)
}
