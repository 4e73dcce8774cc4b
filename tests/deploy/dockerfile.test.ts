import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

// The Dockerfile's essentials, read as text: there is no Docker daemon to build it here, and
// CI's image job builds it for real.

interface Instruction { keyword: string, args: string }

const read = (path: string) => readFileSync(fileURLToPath(new URL(`../../${path}`, import.meta.url)), 'utf8')

function instructions(text: string): Instruction[] {
  return text
    .replace(/\\\r?\n/g, ' ') // join continuation lines
    .split(/\r?\n/)
    .map(line => line.trim())
    .filter(line => line && !line.startsWith('#'))
    .map((line) => {
      const [keyword, ...rest] = line.split(/\s+/)
      return { keyword: keyword!.toUpperCase(), args: rest.join(' ') }
    })
}

const all = instructions(read('Dockerfile'))
const stages = all.reduce<Instruction[][]>((list, instruction) => {
  if (instruction.keyword === 'FROM') list.push([])
  list.at(-1)?.push(instruction)
  return list
}, [])
const final = stages.at(-1)!
const argsOf = (stage: Instruction[], keyword: string) => stage.filter(i => i.keyword === keyword).map(i => i.args)

describe('Dockerfile', () => {
  it('is multi-stage, every stage on node:24-slim pinned to a minor version', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2)
    for (const from of argsOf(all, 'FROM')) {
      const image = from.split(/\s+/)[0]!
      expect(image).toMatch(/^node:24\.\d+(\.\d+)?-slim(@sha256:[a-f0-9]{64})?$/)
    }
  })

  it('builds with npm ci and nuxt build in the build stage', () => {
    const runs = argsOf(stages[0]!, 'RUN').join('\n')
    expect(runs).toMatch(/npm ci\b/)
    expect(runs).toMatch(/nuxt build/)
  })

  it('ships only .output in the runtime stage', () => {
    const copies = argsOf(final, 'COPY')
    expect(copies.length).toBeGreaterThan(0)
    for (const copy of copies) {
      expect(copy).toMatch(/--from=\S+/)
      expect(copy).toMatch(/\/\.output\s/)
    }
    expect(argsOf(final, 'RUN').join('\n')).not.toMatch(/npm (ci|install)/)
  })

  it('runs as a non-root user in production mode', () => {
    const user = argsOf(final, 'USER').at(-1)
    expect(user).toBeDefined()
    expect(user).not.toMatch(/^(root|0)(:|$)/)
    expect(argsOf(final, 'ENV').join(' ')).toMatch(/NODE_ENV=production/)
  })

  it('exposes 3000, checks /api/health with node, and starts the Nitro server', () => {
    expect(argsOf(final, 'EXPOSE').join(' ').split(/\s+/)).toContain('3000')
    const healthcheck = argsOf(final, 'HEALTHCHECK').join(' ')
    expect(healthcheck).toContain('/api/health')
    expect(healthcheck).toMatch(/CMD \[?"?node/)
    expect(healthcheck).not.toMatch(/curl|wget/)
    expect(JSON.parse(argsOf(final, 'CMD').at(-1)!)).toEqual(['node', '.output/server/index.mjs'])
  })

  it('keeps local state and build output out of the build context', () => {
    const ignored = read('.dockerignore').split(/\r?\n/).map(line => line.trim())
    for (const entry of ['node_modules', '.nuxt', '.output', '.data', '.cache', '.tools', '.git', 'bench/results']) {
      expect(ignored, entry).toContain(entry)
    }
  })
})
