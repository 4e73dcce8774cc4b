// Runs first in postinstall, on the Node that npm scripts get: the `node` dev dependency's, put
// first on their PATH by npm. It only speaks when that Node misses package.json's engines.node
// (say the `node` package's install script was skipped with --ignore-scripts), so the install
// stops with one clear line instead of a build failing later on a missing Node 22 API.
import { readFileSync } from 'node:fs'

const range = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).engines.node
const parse = version => version.replace(/^v/, '').split('.').map(Number)
const compare = (a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]
const current = parse(process.versions.node)
// The forms engines.node uses: `^x.y.z` and `>=x.y.z`, joined by `||`.
const satisfied = range.split('||').map(part => part.trim()).some((part) => {
  const wanted = parse(part.replace(/^(\^|>=)/, ''))
  if (part.startsWith('>=')) return compare(current, wanted) >= 0
  if (part.startsWith('^')) return current[0] === wanted[0] && compare(current, wanted) >= 0
  throw new Error(`check-node: unsupported engines.node part "${part}"`)
})
if (!satisfied) {
  console.error(`Natter needs Node ${range}; npm scripts run on ${process.version} (${process.execPath}).`)
  console.error('The `node` dev dependency provides it: run `npm install` again without --ignore-scripts.')
  process.exit(1)
}
