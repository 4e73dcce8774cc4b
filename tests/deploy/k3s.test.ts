import { execFileSync } from 'node:child_process'
import { cpSync, copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse, parseAllDocuments } from 'yaml'

// Renders both overlays the way an operator would (`kubectl kustomize`) and checks what the
// cluster would receive. The secrets.env files are git-ignored, so the render runs on a temporary
// copy of k3s/ where each one is made from its committed *.example.

interface Probe { httpGet?: { path: string, port: string | number }, exec?: unknown, tcpSocket?: unknown }
interface SecurityContext {
  runAsNonRoot?: boolean
  runAsUser?: number
  readOnlyRootFilesystem?: boolean
  allowPrivilegeEscalation?: boolean
  capabilities?: { drop?: string[] }
}
interface EnvVar {
  name: string
  value?: string
  valueFrom?: { secretKeyRef?: { name: string, key: string }, configMapKeyRef?: { name: string, key: string } }
}
interface Container {
  name: string
  image: string
  ports?: { name?: string, containerPort: number }[]
  env?: EnvVar[]
  envFrom?: { configMapRef?: { name: string }, secretRef?: { name: string } }[]
  readinessProbe?: Probe
  livenessProbe?: Probe
  startupProbe?: Probe
  lifecycle?: { preStop?: { exec?: { command: string[] } } }
  resources?: { requests?: Record<string, string>, limits?: Record<string, string> }
  securityContext?: SecurityContext
  volumeMounts?: { name: string, mountPath: string }[]
}
interface PodTemplate {
  metadata: { labels: Record<string, string> }
  spec: {
    containers: Container[]
    initContainers?: Container[]
    securityContext?: SecurityContext
    terminationGracePeriodSeconds?: number
  }
}
interface LabelSelector { matchLabels?: Record<string, string> }
interface Manifest {
  apiVersion: string
  kind: string
  metadata: { name: string, namespace?: string, annotations?: Record<string, string> }
  data?: Record<string, string>
  spec?: {
    replicas?: number
    template?: PodTemplate
    strategy?: { type?: string, rollingUpdate?: { maxUnavailable?: number | string, maxSurge?: number | string } }
    volumeClaimTemplates?: { metadata: { name: string }, spec: { resources: { requests: { storage: string } } } }[]
    selector?: LabelSelector | Record<string, string>
    clusterIP?: string
    ports?: { name?: string, port: number, targetPort?: string | number }[]
    minAvailable?: number | string
    podSelector?: LabelSelector
    policyTypes?: string[]
    ingress?: { from?: { podSelector?: LabelSelector, namespaceSelector?: unknown, ipBlock?: unknown }[], ports?: { port: number | string }[] }[]
    tls?: { hosts?: string[], secretName?: string }[]
    rules?: { host?: string, http: { paths: { path: string, pathType: string, backend: { service: { name: string, port: { name?: string, number?: number } } } }[] } }[]
    valuesContent?: string
  }
}

const root = fileURLToPath(new URL('../..', import.meta.url))
const kubectl = process.env.KUBECTL ?? 'kubectl'
const overlays = ['production', 'local'] as const
const rendered: Record<string, Manifest[]> = {}
let workdir = ''

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter(entry => entry.isFile())
    .map(entry => join(entry.parentPath, entry.name))
}

beforeAll(() => {
  workdir = mkdtempSync(join(tmpdir(), 'natter-k3s-'))
  const tree = join(workdir, 'k3s')
  // Leave out any real secrets.env of this checkout: the render must work from the examples alone.
  cpSync(join(root, 'k3s'), tree, { recursive: true, filter: source => !source.endsWith('/secrets.env') })
  for (const file of filesUnder(tree).filter(file => file.endsWith('.env.example'))) {
    copyFileSync(file, file.slice(0, -'.example'.length))
  }
  for (const overlay of overlays) {
    const out = execFileSync(kubectl, ['kustomize', join(tree, 'overlays', overlay)], { encoding: 'utf8' })
    rendered[overlay] = parseAllDocuments(out).map(doc => doc.toJS() as Manifest).filter(Boolean)
  }
}, 60_000)

afterAll(() => {
  if (workdir) rmSync(workdir, { recursive: true, force: true })
})

function find(manifests: Manifest[], kind: string, name: string): Manifest {
  const found = manifests.find(m => m.kind === kind && m.metadata.name === name)
  if (!found) throw new Error(`no ${kind} ${name} in the render`)
  return found
}

function workloads(manifests: Manifest[]): Manifest[] {
  return manifests.filter(m => ['Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'CronJob'].includes(m.kind))
}

function containersOf(workload: Manifest): Container[] {
  const spec = workload.spec!.template!.spec
  return [...spec.containers, ...(spec.initContainers ?? [])]
}

function matches(selector: LabelSelector | undefined, labels: Record<string, string>): boolean {
  const wanted = Object.entries(selector?.matchLabels ?? {})
  return wanted.length > 0 && wanted.every(([key, value]) => labels[key] === value)
}

function appDeployment(manifests: Manifest[]) {
  const deployment = find(manifests, 'Deployment', 'natter')
  const container = deployment.spec!.template!.spec.containers.find(c => c.name === 'natter')!
  return { deployment, container, pod: deployment.spec!.template!.spec }
}

function portNumber(container: Container, port: string | number | undefined): number | undefined {
  if (typeof port === 'number') return port
  return container.ports?.find(p => p.name === port)?.containerPort
}

describe.each(overlays)('k3s overlay %s', (overlay) => {
  const manifests = () => rendered[overlay]!

  it('renders with kubectl kustomize into the natter namespace', () => {
    expect(manifests().length).toBeGreaterThan(10)
    const namespaced = manifests().filter(m => !['Namespace', 'HelmChartConfig'].includes(m.kind))
    for (const m of namespaced) expect(m.metadata.namespace, `${m.kind} ${m.metadata.name}`).toBe('natter')
  })

  it('pins every image to an explicit version', () => {
    const images = workloads(manifests()).flatMap(w => containersOf(w).map(c => c.image))
    expect(images.length).toBeGreaterThanOrEqual(4)
    for (const image of images) {
      const lastPart = image.split('/').pop()!
      expect(lastPart, image).toMatch(/^[a-z0-9._-]+(:[\w][\w.-]*)(@sha256:[a-f0-9]{64})?$|^[a-z0-9._-]+@sha256:[a-f0-9]{64}$/)
      expect(image, image).not.toMatch(/:latest(@|$)/)
    }
  })

  it('probes the app: readiness on /api/ready, liveness and startup on /api/health, all on port 3000', () => {
    const { container } = appDeployment(manifests())
    expect(container.readinessProbe?.httpGet?.path).toBe('/api/ready')
    expect(container.livenessProbe?.httpGet?.path).toBe('/api/health')
    expect(container.startupProbe?.httpGet?.path).toBe('/api/health')
    for (const probe of [container.readinessProbe, container.livenessProbe, container.startupProbe]) {
      expect(portNumber(container, probe?.httpGet?.port)).toBe(3000)
    }
  })

  it('runs the app as non-root on a read-only root filesystem without capabilities', () => {
    const { container, pod } = appDeployment(manifests())
    const nonRoot = container.securityContext?.runAsNonRoot ?? pod.securityContext?.runAsNonRoot
    expect(nonRoot).toBe(true)
    expect(container.securityContext?.readOnlyRootFilesystem).toBe(true)
    expect(container.securityContext?.allowPrivilegeEscalation).toBe(false)
    expect(container.securityContext?.capabilities?.drop).toContain('ALL')
    const mounts = container.volumeMounts?.map(m => m.mountPath) ?? []
    expect(mounts).toContain('/tmp')
  })

  it('drains gracefully: preStop pause, grace period above pause plus a ~25 s drain, no capacity loss on rollout', () => {
    const { deployment, container, pod } = appDeployment(manifests())
    const preStop = container.lifecycle?.preStop?.exec?.command ?? []
    expect(preStop[0]).toBe('sleep')
    const pause = Number(preStop[1])
    expect(pause).toBeGreaterThanOrEqual(3)
    expect(pod.terminationGracePeriodSeconds ?? 30).toBeGreaterThanOrEqual(pause + 30)
    expect(deployment.spec!.strategy?.type).toBe('RollingUpdate')
    expect(deployment.spec!.strategy?.rollingUpdate?.maxUnavailable).toBe(0)
  })

  it('gives every container resource requests and limits', () => {
    for (const workload of workloads(manifests())) {
      for (const container of containersOf(workload)) {
        const where = `${workload.metadata.name}/${container.name}`
        expect(container.resources?.requests?.cpu, where).toBeTruthy()
        expect(container.resources?.requests?.memory, where).toBeTruthy()
        expect(container.resources?.limits?.memory, where).toBeTruthy()
        expect(container.resources?.limits?.cpu, where).toBeTruthy()
      }
    }
  })

  it('keeps PostgreSQL, Kafka and Redis data on persistent volumes', () => {
    const expected = { postgres: '/var/lib/postgresql/data', kafka: '/var/lib/kafka/data', redis: '/data' }
    for (const [name, path] of Object.entries(expected)) {
      const set = find(manifests(), 'StatefulSet', name)
      const claims = set.spec!.volumeClaimTemplates ?? []
      expect(claims.length, name).toBe(1)
      const mount = set.spec!.template!.spec.containers[0]!.volumeMounts?.find(m => m.name === claims[0]!.metadata.name)
      expect(mount?.mountPath, name).toBe(path)
    }
    expect(find(manifests(), 'Service', 'postgres').spec!.clusterIP).toBe('None')
  })

  it('lets only the app pods reach postgres, redis and kafka', () => {
    const appLabels = appDeployment(manifests()).deployment.spec!.template!.metadata.labels
    const policies = manifests().filter(m => m.kind === 'NetworkPolicy')
    for (const [name, port] of [['postgres', 5432], ['redis', 6379], ['kafka', 9092]] as const) {
      const podLabels = find(manifests(), 'StatefulSet', name).spec!.template!.metadata.labels
      const guarding = policies.filter(p => matches(p.spec!.podSelector, podLabels))
      expect(guarding.length, `a NetworkPolicy selecting ${name}`).toBeGreaterThan(0)
      for (const policy of guarding) {
        expect(policy.spec!.policyTypes).toContain('Ingress')
        for (const rule of policy.spec!.ingress ?? []) {
          // An empty or missing `from` would admit every source.
          expect(rule.from?.length, policy.metadata.name).toBeGreaterThan(0)
          for (const peer of rule.from!) {
            expect(peer.ipBlock, policy.metadata.name).toBeUndefined()
            expect(peer.namespaceSelector, policy.metadata.name).toBeUndefined()
          }
        }
      }
      const admitsApp = guarding.some(p => (p.spec!.ingress ?? []).some(rule =>
        rule.from!.some(peer => matches(peer.podSelector, appLabels))
        && (rule.ports ?? []).some(p => Number(p.port) === port)))
      expect(admitsApp, `app admitted to ${name}:${port}`).toBe(true)
    }
  })

  it('takes secrets only from generated Secrets, never from plain values', () => {
    const secrets = manifests().filter(m => m.kind === 'Secret')
    // Generated names carry a content hash: a hand-written Secret would not.
    for (const secret of secrets) expect(secret.metadata.name).toMatch(/-[a-z0-9]{10}$/)
    const secretKeys = ['NATTER_SESSION_SECRET', 'NATTER_METRICS_TOKEN', 'POSTGRES_PASSWORD', 'SMTP_URL']
    for (const config of manifests().filter(m => m.kind === 'ConfigMap')) {
      for (const key of secretKeys) expect(Object.keys(config.data ?? {}), config.metadata.name).not.toContain(key)
    }
    for (const workload of workloads(manifests())) {
      for (const container of containersOf(workload)) {
        for (const env of container.env ?? []) {
          if (secretKeys.includes(env.name)) expect(env.value, `${container.name} ${env.name}`).toBeUndefined()
          if (/PASSWORD|SECRET|TOKEN/.test(env.name)) expect(env.valueFrom?.secretKeyRef, env.name).toBeDefined()
        }
      }
    }
  })

  it('points every Secret and ConfigMap reference at something the render contains', () => {
    const byName = new Map(manifests().filter(m => ['Secret', 'ConfigMap'].includes(m.kind)).map(m => [`${m.kind}/${m.metadata.name}`, m]))
    for (const workload of workloads(manifests())) {
      for (const container of containersOf(workload)) {
        for (const source of container.envFrom ?? []) {
          if (source.configMapRef) expect(byName.has(`ConfigMap/${source.configMapRef.name}`), source.configMapRef.name).toBe(true)
          if (source.secretRef) expect(byName.has(`Secret/${source.secretRef.name}`), source.secretRef.name).toBe(true)
        }
        for (const env of container.env ?? []) {
          const ref = env.valueFrom?.secretKeyRef
          if (!ref) continue
          const secret = byName.get(`Secret/${ref.name}`)
          expect(secret, ref.name).toBeDefined()
          expect(Object.keys(secret!.data ?? {}), `${ref.name} has ${ref.key}`).toContain(ref.key)
        }
      }
    }
    const appSecret = manifests().find(m => m.kind === 'Secret' && m.metadata.name.startsWith('natter-secrets-'))
    expect(Object.keys(appSecret?.data ?? {})).toContain('NATTER_SESSION_SECRET')
  })

  it('configures the app for the in-cluster PostgreSQL, Redis and Kafka Services', () => {
    const { container } = appDeployment(manifests())
    const configName = container.envFrom?.find(s => s.configMapRef)?.configMapRef?.name
    const config = find(manifests(), 'ConfigMap', configName!).data!
    const serviceNames = manifests().filter(m => m.kind === 'Service').map(m => m.metadata.name)
    const databaseUrl = container.env?.find(e => e.name === 'DATABASE_URL')?.value ?? ''
    expect(databaseUrl).toContain('$(POSTGRES_PASSWORD)')
    const envIndex = (name: string) => container.env!.findIndex(e => e.name === name)
    // Kubernetes expands $(VAR) only from variables defined earlier in the list.
    expect(envIndex('POSTGRES_PASSWORD')).toBeLessThan(envIndex('DATABASE_URL'))
    expect(serviceNames).toContain(new URL(databaseUrl.replace('$(POSTGRES_PASSWORD)', 'x')).hostname)
    expect(serviceNames).toContain(new URL(config.REDIS_URL!).hostname)
    for (const broker of config.KAFKA_BROKERS!.split(',')) expect(serviceNames).toContain(broker.split(':')[0])
    // Behind Traefik the connection's address is Traefik's: rate limits need X-Forwarded-For.
    expect(config.NATTER_TRUST_PROXY).toMatch(/^(1|true)$/)
    expect(config.NATTER_RETENTION_DAYS).toMatch(/^\d+$/)
    // Fixed at build time (a Docker build argument): a runtime value here would only mislead.
    expect(config.NATTER_RETENTION_CRON).toBeUndefined()
  })

  it('routes the public host, / and so /ws, to the app Service on its http port', () => {
    const ingress = find(manifests(), 'Ingress', 'natter')
    const { deployment, container } = appDeployment(manifests())
    const config = find(manifests(), 'ConfigMap', container.envFrom!.find(s => s.configMapRef)!.configMapRef!.name).data!
    const rule = ingress.spec!.rules![0]!
    expect(rule.host).toBe(new URL(config.NATTER_PUBLIC_URL!).hostname)
    const root = rule.http.paths.find(p => p.path === '/')!
    expect(root.pathType).toBe('Prefix')
    const service = find(manifests(), 'Service', root.backend.service.name)
    expect(matches({ matchLabels: service.spec!.selector as Record<string, string> }, deployment.spec!.template!.metadata.labels)).toBe(true)
    const port = service.spec!.ports!.find(p => p.name === root.backend.service.port.name || p.port === root.backend.service.port.number)
    expect(port, 'the backend port exists on the Service').toBeDefined()
    expect(portNumber(container, port!.targetPort)).toBe(3000)
  })

  it('does not expose /metrics through the Ingress', () => {
    const metrics = manifests().filter(m => m.kind === 'Ingress')
      .filter(m => m.spec!.rules!.some(r => r.http.paths.some(p => p.path === '/metrics')))
    expect(metrics.length).toBe(1)
    const middleware = metrics[0]!.metadata.annotations?.['traefik.ingress.kubernetes.io/router.middlewares'] ?? ''
    const [namespace, ...rest] = middleware.replace(/@kubernetescrd$/, '').split('-')
    const deny = find(manifests(), 'Middleware', rest.join('-'))
    expect(namespace).toBe('natter')
    expect(JSON.stringify(deny.spec)).toContain('127.0.0.1/32')
  })
})

describe('k3s production overlay', () => {
  const manifests = () => rendered.production!

  it('serves HTTPS on websecure with a Let\'s Encrypt certificate for the public host', () => {
    for (const ingress of manifests().filter(m => m.kind === 'Ingress')) {
      const annotations = ingress.metadata.annotations ?? {}
      expect(annotations['traefik.ingress.kubernetes.io/router.entrypoints']).toBe('websecure')
      expect(annotations['traefik.ingress.kubernetes.io/router.tls']).toBe('true')
      expect(annotations['traefik.ingress.kubernetes.io/router.tls.certresolver']).toBe('letsencrypt')
      const host = ingress.spec!.rules![0]!.host!
      expect(ingress.spec!.tls?.[0]?.hosts).toContain(host)
      expect(host).not.toMatch(/localhost/)
    }
    const config = manifests().find(m => m.kind === 'ConfigMap' && m.metadata.name.startsWith('natter-config-'))!
    expect(config.data!.NATTER_PUBLIC_URL).toMatch(/^https:\/\//)
  })

  it('configures k3s\'s Traefik with the letsencrypt resolver, stored on a volume, and an HTTPS redirect', () => {
    const traefik = manifests().find(m => m.kind === 'HelmChartConfig')!
    expect(traefik.apiVersion).toBe('helm.cattle.io/v1')
    expect(traefik.metadata).toMatchObject({ name: 'traefik', namespace: 'kube-system' })
    const values = parse(traefik.spec!.valuesContent!) as { additionalArguments: string[], persistence: { enabled: boolean, path: string } }
    const args = values.additionalArguments.join('\n')
    expect(args).toMatch(/certificatesresolvers\.letsencrypt\.acme\.email=\S+@\S+/)
    expect(args).toContain('certificatesresolvers.letsencrypt.acme.storage=/data/acme.json')
    expect(args).toMatch(/certificatesresolvers\.letsencrypt\.acme\.(tlschallenge=true|httpchallenge)/)
    expect(args).toMatch(/entryPoints\.web\.http\.redirections\.entryPoint\.scheme=https/)
    expect(values.persistence).toMatchObject({ enabled: true, path: '/data' })
  })

  it('runs two app replicas with a disruption budget keeping one', () => {
    const { deployment } = appDeployment(manifests())
    expect(deployment.spec!.replicas).toBeGreaterThanOrEqual(2)
    const budget = find(manifests(), 'PodDisruptionBudget', 'natter')
    expect(budget.spec!.minAvailable).toBe(1)
    expect(matches(budget.spec!.selector as LabelSelector, deployment.spec!.template!.metadata.labels)).toBe(true)
  })

  it('pulls the app image from ghcr.io with a release tag', () => {
    const { container } = appDeployment(manifests())
    expect(container.image).toMatch(/^ghcr\.io\/[^/]+\/natter:[\w.-]+$/)
  })
})

describe('k3s local overlay', () => {
  const manifests = () => rendered.local!

  it('serves plain HTTP on natter.localhost without TLS or a certificate resolver', () => {
    const ingress = find(manifests(), 'Ingress', 'natter')
    const annotations = ingress.metadata.annotations ?? {}
    expect(annotations['traefik.ingress.kubernetes.io/router.entrypoints']).toBe('web')
    expect(annotations['traefik.ingress.kubernetes.io/router.tls.certresolver']).toBeUndefined()
    expect(ingress.spec!.tls).toBeUndefined()
    expect(ingress.spec!.rules![0]!.host).toBe('natter.localhost')
    expect(manifests().some(m => m.kind === 'HelmChartConfig')).toBe(false)
  })
})

describe('k3s source tree', () => {
  const sources = () => filesUnder(join(root, 'k3s')).filter(file => !file.endsWith('/secrets.env'))

  it('holds no hand-written Secret and no secretGenerator literals', () => {
    for (const file of sources().filter(f => /\.ya?ml$/.test(f))) {
      for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
        const manifest = doc.toJS() as { kind?: string, secretGenerator?: { literals?: unknown }[] } | null
        expect(manifest?.kind, relative(root, file)).not.toBe('Secret')
        for (const generator of manifest?.secretGenerator ?? []) expect(generator.literals, relative(root, file)).toBeUndefined()
      }
    }
  })

  it('keeps every secrets.env out of git and commits an example for each', () => {
    for (const overlay of overlays) {
      for (const file of [`k3s/overlays/${overlay}/secrets.env`, `k3s/overlays/${overlay}/postgres/secrets.env`]) {
        // check-ignore exits 1 (and execFileSync throws) when the path would be committed.
        expect(() => execFileSync('git', ['check-ignore', '-q', '--no-index', file], { cwd: root }), file).not.toThrow()
        expect(() => readFileSync(join(root, `${file}.example`)), `${file}.example`).not.toThrow()
      }
    }
  })

  it('uses resources:, never the removed bases:, in every kustomization', () => {
    for (const file of sources().filter(f => f.endsWith('kustomization.yaml'))) {
      const kustomization = parse(readFileSync(file, 'utf8')) as Record<string, unknown>
      expect(kustomization.bases, relative(root, file)).toBeUndefined()
      expect(kustomization.resources, relative(root, file)).toBeDefined()
    }
  })

  it('names the app image and its tag in exactly one place for production', () => {
    const mentions = sources().filter(f => readFileSync(f, 'utf8').includes('ghcr.io/'))
    expect(mentions.map(f => relative(root, f))).toEqual(['k3s/overlays/production/kustomization.yaml'])
  })
})

describe('Grafana dashboard', () => {
  const metrics = [
    'natter_open_sockets',
    'natter_messages_accepted_total',
    'natter_messages_persisted_total',
    'natter_messages_delivered_total',
    'natter_send_to_persist_seconds_bucket',
    'natter_send_to_deliver_seconds_bucket',
    'natter_bus_consumer_lag',
    'natter_rate_limited_total',
    'natter_signin_codes_sent_total',
    'natter_signin_codes_failed_total',
    'natter_http_request_duration_seconds_bucket',
    'process_resident_memory_bytes',
    'process_cpu_seconds_total'
  ]

  it('has a panel query for each metric the app exposes', () => {
    const dashboard = JSON.parse(readFileSync(join(root, 'k3s/grafana-dashboard.json'), 'utf8')) as {
      title: string
      panels: { type: string, title: string, targets?: { expr: string }[] }[]
    }
    expect(dashboard.title).toBeTruthy()
    const exprs = dashboard.panels.flatMap(p => (p.targets ?? []).map(t => t.expr))
    for (const metric of metrics) {
      expect(exprs.some(expr => new RegExp(`\\b${metric}\\b`).test(expr)), metric).toBe(true)
    }
    expect(exprs.some(expr => /by \([^)]*\broute\b/.test(expr) && expr.includes('natter_http_request_duration_seconds'))).toBe(true)
  })
})
