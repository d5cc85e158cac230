# moto's server (PyPI `moto[server]`): CloudFront's API over plain HTTP, for the CDN invalidation
# tests. Source it after garage.sh (it uses that file's `free_port`); needs a `log` function.
# start_moto: installs moto[server] with pip when `moto_server` is missing, starts it on a free
# loopback port and exports AWS_ENDPOINT_URL_CLOUDFRONT and CAIRN_TEST_CLOUDFRONT=1. moto accepts
# any credentials; the tests sign with static dummy ones.
# stop_moto: stops it.
MOTO_PID=""
MOTO_LOG=""

moto_bin() {
    local bin
    bin="$(command -v moto_server || true)"
    if [ -z "$bin" ]; then
        log "installing moto[server] with pip"
        # The active Python's site-packages (a venv or pyenv), else the user's; pipx where the
        # system Python refuses pip (PEP 668).
        python3 -m pip install --quiet 'moto[server]' >&2 ||
            python3 -m pip install --quiet --user 'moto[server]' >&2 ||
            { command -v pipx >/dev/null && pipx install 'moto[server]' >&2; } ||
            return 1
        command -v pyenv >/dev/null && pyenv rehash
        hash -r
        bin="$(command -v moto_server || true)"
        [ -n "$bin" ] || bin="$(python3 -m site --user-base)/bin/moto_server"
    fi
    [ -x "$bin" ] || return 1
    echo "$bin"
}

start_moto() {
    local bin port
    bin="$(moto_bin)" || { log "moto_server is unavailable"; return 1; }
    port=$(free_port 24500)
    MOTO_LOG="$(mktemp /tmp/cairn-moto.XXXXXX)"
    log "starting moto on 127.0.0.1:$port"
    "$bin" -H 127.0.0.1 -p "$port" >"$MOTO_LOG" 2>&1 &
    MOTO_PID=$!
    local i
    for i in $(seq 1 150); do
        # moto's own API answers once the server is up.
        if curl -fsS -o /dev/null "http://127.0.0.1:$port/moto-api/" 2>/dev/null; then
            export AWS_ENDPOINT_URL_CLOUDFRONT="http://127.0.0.1:$port" CAIRN_TEST_CLOUDFRONT=1
            return 0
        fi
        kill -0 "$MOTO_PID" 2>/dev/null || { cat "$MOTO_LOG" >&2; MOTO_PID=""; return 1; }
        sleep 0.2
    done
    log "moto did not become ready"; tail -n 30 "$MOTO_LOG" >&2
    stop_moto
    return 1
}

stop_moto() {
    if [ -n "$MOTO_PID" ]; then
        kill "$MOTO_PID" 2>/dev/null || true
        wait "$MOTO_PID" 2>/dev/null || true
        MOTO_PID=""
    fi
    unset AWS_ENDPOINT_URL_CLOUDFRONT CAIRN_TEST_CLOUDFRONT
    if [ -n "$MOTO_LOG" ]; then
        rm -f "$MOTO_LOG"
        MOTO_LOG=""
    fi
}
