# Headless Chromium + Node for the operator dashboard's browser check (tests/browser/dashboard.mjs).
# Source it; needs a `log` function.
# start_browser_tools: installs Debian's `chromium` package when /usr/bin/chromium is missing
# (apt-get, through sudo when not root), checks that node (>= 20, for playwright-core) and npm
# exist, runs `npm ci` in tests/browser when its playwright-core is missing or not the locked
# version, and exports CAIRN_TEST_CHROMIUM and CAIRN_TEST_BROWSER_DIR. Nothing keeps running, so
# there is no stop function. Returns 1 when any of it fails.
# Then: node "$CAIRN_TEST_BROWSER_DIR/dashboard.mjs" with CAIRN_URL, CAIRN_OPERATOR_TOKEN, ... set.
BROWSER_CHROMIUM=/usr/bin/chromium
BROWSER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/tests/browser"

install_chromium() {
    log "installing Chromium (Debian package chromium)"
    local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null \
        || return 1
}

# The playwright-core version package-lock.json pins, and the one installed (empty when none).
locked_playwright() {
    node -e 'const l = require(process.argv[1]); console.log(l.packages["node_modules/playwright-core"].version)' \
        "$BROWSER_DIR/package-lock.json" 2>/dev/null
}
installed_playwright() {
    node -e 'console.log(require(process.argv[1]).version)' \
        "$BROWSER_DIR/node_modules/playwright-core/package.json" 2>/dev/null
}

start_browser_tools() {
    if [ ! -x "$BROWSER_CHROMIUM" ]; then
        install_chromium || { log "could not install Chromium"; return 1; }
        [ -x "$BROWSER_CHROMIUM" ] || { log "$BROWSER_CHROMIUM is still missing after installing chromium"; return 1; }
    fi
    # The Debian launcher script prints a warning on some hosts; only the exit status matters.
    "$BROWSER_CHROMIUM" --version >/dev/null 2>&1 || { log "$BROWSER_CHROMIUM does not run"; return 1; }

    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        log "node and npm are needed for the browser check (tests/browser) and are missing"
        return 1
    fi
    node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
        { log "node $(node --version) is too old for playwright-core (needs >= 20)"; return 1; }

    local want have
    want="$(locked_playwright || true)"
    [ -n "$want" ] || { log "cannot read playwright-core's version from $BROWSER_DIR/package-lock.json"; return 1; }
    have="$(installed_playwright || true)"
    if [ "$have" != "$want" ]; then
        log "installing playwright-core $want (npm ci in tests/browser)"
        npm ci --prefix "$BROWSER_DIR" --no-audit --no-fund >&2 || { log "npm ci in tests/browser failed"; return 1; }
        [ "$(installed_playwright || true)" = "$want" ] || { log "playwright-core $want is missing after npm ci"; return 1; }
    fi
    export CAIRN_TEST_CHROMIUM="$BROWSER_CHROMIUM" CAIRN_TEST_BROWSER_DIR="$BROWSER_DIR"
}
