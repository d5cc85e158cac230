# Garage (single node) for Cairn's tests and benchmarks. Source it; needs a `log` function.
# start_garage: installs the pinned version when missing, starts it on free loopback ports in a
# temp dir (infra/garage/garage.toml) and exports the AWS_* variables that reach it.
# stop_garage: stops it and removes its data.
GARAGE_VERSION=2.5.0
GARAGE_TMP=""
GARAGE_PID=""

rand_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

# The first port from $1 up that nothing is bound to on 127.0.0.1. Callers start below the
# kernel's ephemeral range (32768-60999 on Linux): a port in that range can be held by any
# client connection (a test's, cargo's) and refuse a server's bind although nothing listens on it.
# Probed by binding where Python is available (it sees client sockets too), else by connecting.
free_port() {
    local port=$1
    while port_taken "$port"; do port=$((port + 1)); done
    echo "$port"
}

port_taken() {
    if command -v python3 >/dev/null 2>&1; then
        ! python3 -c 'import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

# $GARAGE_BIN, when set, names the binary to run (a release build for benchmarks, say).
garage_bin() {
    local bin
    if [ -n "${GARAGE_BIN:-}" ]; then
        [ -x "$GARAGE_BIN" ] || { log "GARAGE_BIN=$GARAGE_BIN is not an executable"; return 1; }
        echo "$GARAGE_BIN"; return 0
    fi
    bin="$(command -v garage || true)"
    [ -n "$bin" ] || bin="$HOME/.cargo/bin/garage"
    if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "[:v]$GARAGE_VERSION\b"; then
        echo "$bin"; return 0
    fi
    log "installing Garage $GARAGE_VERSION (cargo install --debug; cached in ~/.cargo/bin for later runs)"
    cargo install --locked --debug garage --version "$GARAGE_VERSION" >&2 || return 1
    echo "$HOME/.cargo/bin/garage"
}

# Another process can take a probed port before Garage binds it; Garage then exits, and the
# start is retried on the next ports.
start_garage() {
    local bin attempt base=23900
    bin="$(garage_bin)" || return 1
    for attempt in 1 2 3 4 5; do
        start_garage_on "$bin" "$base" && return 0
        [ -n "$GARAGE_PID" ] && return 1 # running but not ready: retrying would not help
        base=$((base + 10))
        log "retrying Garage on other ports (attempt $((attempt + 1)) of 5)"
    done
    return 1
}

# One start on free ports from $2; leaves GARAGE_PID empty when Garage exited by itself.
start_garage_on() {
    local bin=$1
    [ -n "$GARAGE_TMP" ] && rm -rf "$GARAGE_TMP"
    GARAGE_TMP="$(mktemp -d /tmp/cairn-garage.XXXXXX)"
    local s3 rpc web admin
    s3=$(free_port "$2"); rpc=$(free_port $((s3 + 1))); web=$(free_port $((rpc + 1))); admin=$(free_port $((web + 1)))
    sed -e "s#/var/lib/garage#$GARAGE_TMP#" \
        -e "s#REPLACE_WITH_64_HEX_CHARACTERS#$(rand_hex 32)#" \
        -e "s#127.0.0.1:3900#127.0.0.1:$s3#" -e "s#127.0.0.1:3901#127.0.0.1:$rpc#g" \
        -e "s#127.0.0.1:3902#127.0.0.1:$web#" -e "s#127.0.0.1:3903#127.0.0.1:$admin#" \
        infra/garage/garage.toml >"$GARAGE_TMP/garage.toml"
    export GARAGE_DEFAULT_ACCESS_KEY="GK$(rand_hex 12)"
    export GARAGE_DEFAULT_SECRET_KEY="$(rand_hex 32)"
    export GARAGE_DEFAULT_BUCKET=cairn-test
    log "starting Garage on 127.0.0.1:$s3"
    "$bin" -c "$GARAGE_TMP/garage.toml" server --single-node --default-access-key --default-bucket \
        >"$GARAGE_TMP/garage.log" 2>&1 &
    GARAGE_PID=$!
    # Ready when the default bucket exists and the S3 port accepts connections (a debug build on
    # a busy machine can take a while). Garage logs a failed bind and keeps running without
    # that server, so a bind error in its log counts as an exit.
    local i ready=""
    for i in $(seq 1 300); do
        if grep -q 'Address already in use' "$GARAGE_TMP/garage.log" 2>/dev/null; then
            log "Garage could not bind its ports:"
            grep 'Address already in use' "$GARAGE_TMP/garage.log" >&2
            kill "$GARAGE_PID" 2>/dev/null || true
            wait "$GARAGE_PID" 2>/dev/null || true
            GARAGE_PID=""
            return 1
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$s3") 2>/dev/null &&
            "$bin" -c "$GARAGE_TMP/garage.toml" bucket info "$GARAGE_DEFAULT_BUCKET" >/dev/null 2>&1; then
            ready=1; break
        fi
        kill -0 "$GARAGE_PID" 2>/dev/null || { cat "$GARAGE_TMP/garage.log" >&2; GARAGE_PID=""; return 1; }
        sleep 0.2
    done
    [ -n "$ready" ] || { log "Garage did not become ready"; tail -n 30 "$GARAGE_TMP/garage.log" >&2; return 1; }
    # Each test creates its own bucket through the S3 API.
    "$bin" -c "$GARAGE_TMP/garage.toml" key allow --create-bucket "$GARAGE_DEFAULT_ACCESS_KEY" >/dev/null || return 1
    export AWS_ACCESS_KEY_ID="$GARAGE_DEFAULT_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$GARAGE_DEFAULT_SECRET_KEY"
    export AWS_REGION=garage AWS_ENDPOINT_URL_S3="http://127.0.0.1:$s3" AWS_EC2_METADATA_DISABLED=true
    export CAIRN_TEST_GARAGE_BIN="$bin" CAIRN_TEST_GARAGE_CONFIG="$GARAGE_TMP/garage.toml"
    # Garage accepts but does not enforce If-None-Match on PUT.
    export CAIRN_TEST_S3_CONDITIONAL_WRITES=false
}

stop_garage() {
    if [ -n "$GARAGE_PID" ] && ! kill -0 "$GARAGE_PID" 2>/dev/null; then
        log "Garage had exited; its log:"
        tail -n 30 "$GARAGE_TMP/garage.log" >&2 || true
    fi
    if [ -n "$GARAGE_PID" ]; then
        kill "$GARAGE_PID" 2>/dev/null || true
        wait "$GARAGE_PID" 2>/dev/null || true
        GARAGE_PID=""
    fi
    if [ -n "$GARAGE_TMP" ]; then
        rm -rf "$GARAGE_TMP"
        GARAGE_TMP=""
    fi
}
