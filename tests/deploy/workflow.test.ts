import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'

// The image workflow only runs on GitHub; these checks catch a broken edit before it gets there.

interface Step { uses?: string, run?: string, with?: Record<string, string | boolean> }
interface Job {
  'needs'?: string | string[]
  'permissions'?: Record<string, string>
  'services'?: Record<string, { image: string }>
  'steps': Step[]
  'runs-on': string
}

const file = fileURLToPath(new URL('../../.github/workflows/image.yml', import.meta.url))
const workflow = parse(readFileSync(file, 'utf8')) as {
  on: { push: { branches?: string[], tags?: string[] } }
  jobs: Record<string, Job>
}
const { test, image } = workflow.jobs
const step = (job: Job | undefined, action: string) => job?.steps.find(s => s.uses?.startsWith(`${action}@`))

describe('.github/workflows/image.yml', () => {
  it('runs on pushes to main and on v* tags', () => {
    expect(workflow.on.push.branches).toContain('main')
    expect(workflow.on.push.tags).toContain('v*')
  })

  it('tests on Node 24 with PostgreSQL and Redis: install, lint, typecheck, test', () => {
    expect(String(step(test, 'actions/setup-node')?.with?.['node-version'])).toMatch(/^24/)
    expect(Object.keys(test?.services ?? {})).toEqual(expect.arrayContaining(['postgres', 'redis']))
    const runs = test!.steps.map(s => s.run ?? '')
    const order = ['npm ci', 'npm run lint', 'npm run typecheck', 'npm test'].map(cmd => runs.indexOf(cmd))
    expect(order.every(i => i >= 0), 'each command is a step').toBe(true)
    expect([...order].sort((a, b) => a - b)).toEqual(order)
  })

  it('builds the image only after the tests pass', () => {
    expect([image?.needs].flat()).toContain('test')
    expect(image?.permissions?.packages).toBe('write')
  })

  it('builds for amd64 and arm64 and pushes to ghcr.io with an SBOM and provenance', () => {
    for (const action of ['docker/setup-qemu-action', 'docker/setup-buildx-action', 'docker/login-action', 'docker/metadata-action']) {
      expect(step(image, action), action).toBeDefined()
    }
    expect(step(image, 'docker/login-action')?.with?.registry).toBe('ghcr.io')
    const tags = String(step(image, 'docker/metadata-action')?.with?.tags)
    expect(tags).toMatch(/type=sha/)
    expect(tags).toMatch(/type=semver/)
    const build = step(image, 'docker/build-push-action')?.with ?? {}
    const platforms = String(build.platforms).split(',').map(p => p.trim())
    expect(platforms).toEqual(expect.arrayContaining(['linux/amd64', 'linux/arm64']))
    expect(build.push).toBe(true)
    expect(build.sbom).toBe(true)
    expect(build.provenance).toBe(true)
  })

  it('pins every action to a version', () => {
    const uses = Object.values(workflow.jobs).flatMap(job => job.steps.map(s => s.uses).filter(Boolean)) as string[]
    expect(uses.length).toBeGreaterThan(5)
    for (const action of uses) expect(action).toMatch(/@(v\d+(\.\d+){0,2}|[a-f0-9]{40})$/)
  })
})
