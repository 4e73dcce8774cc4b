import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { DataDirLockedError, lockDataDir, lockFile, unlockDataDir, usesDataDir } from '../../server/utils/data-lock'

const dirs: string[] = []
function dataDir() {
  const dir = join(mkdtempSync(join(tmpdir(), 'natter-lock-')), '.data')
  dirs.push(dir)
  return dir
}
afterEach(() => {
  for (const dir of dirs.splice(0)) {
    unlockDataDir(dir)
    rmSync(join(dir, '..'), { recursive: true, force: true })
  }
})

/** A pid that certainly belonged to a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  await new Promise(resolve => child.once('exit', resolve))
  return child.pid!
}

describe('the data folder lock', () => {
  it('is taken with this pid, taken again by the same process, and given back', () => {
    const dir = dataDir()
    lockDataDir(dir)
    expect(readFileSync(lockFile(dir), 'utf8').trim()).toBe(String(process.pid))
    expect(() => lockDataDir(dir)).not.toThrow()
    unlockDataDir(dir)
    expect(existsSync(lockFile(dir))).toBe(false)
  })

  it('is refused while another live process holds it, naming that process', async () => {
    const dir = dataDir()
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' })
    try {
      lockDataDir(dir)
      writeFileSync(lockFile(dir), `${holder.pid}\n`)
      expect(() => lockDataDir(dir)).toThrow(DataDirLockedError)
      expect(() => lockDataDir(dir)).toThrow(new RegExp(`in use by another Natter \\(pid ${holder.pid}\\)`))
      // Not ours: giving it back leaves it alone.
      unlockDataDir(dir)
      expect(readFileSync(lockFile(dir), 'utf8').trim()).toBe(String(holder.pid))
    }
    finally {
      holder.kill('SIGKILL')
    }
  })

  it('takes over a stale lock: its process is gone, or the file holds no pid', async () => {
    for (const stale of [`${await deadPid()}\n`, '', 'garbage']) {
      const dir = dataDir()
      lockDataDir(dir)
      writeFileSync(lockFile(dir), stale)
      lockDataDir(dir)
      expect(readFileSync(lockFile(dir), 'utf8').trim()).toBe(String(process.pid))
    }
  })

  it('applies only while an embedded backend keeps state in the folder', () => {
    expect(usesDataDir({})).toBe(true)
    expect(usesDataDir({ DATABASE_URL: 'postgres://x' })).toBe(true)
    expect(usesDataDir({ REDIS_URL: 'redis://x' })).toBe(true)
    expect(usesDataDir({ DATABASE_URL: 'postgres://x', REDIS_URL: 'redis://x' })).toBe(false)
    expect(usesDataDir({ NATTER_DATA_DIR: 'memory://' })).toBe(false)
  })
})
