// Nuxt 4.5 and kysely 0.29 need Node >= 22.19; older Node installs quietly resolve older majors.
const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 19)) {
  console.error(`Natter needs Node >= 22.19 (Node 24 recommended); this is ${process.version}.`)
  console.error('Run `source scripts/use-node.sh` to install Node 24 into .tools/ and put it on PATH.')
  process.exit(1)
}
