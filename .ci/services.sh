# Sourced by .ci/run: start the database servers the tests use, on loopback only, export
# their URLs, and stop them again when the calling script exits (trap on EXIT), so that
# `bash .ci/run` can run twice in a row. A test that needs a server missing here is skipped
# locally with the reason; in CI (CI=1) it fails instead.
#
# Ports: WEBQQ_CI_PG_PORT (default 55432) and WEBQQ_CI_REDIS_PORT (default 56379); when
# something already listens there (servers of another run, or of a developer), a free port
# is taken instead and said so. Everything a run creates lives in one directory,
# WEBQQ_CI_DIR (a new /tmp/webqq-ci.XXXXXX): the PostgreSQL data directory and socket, and
# the servers' logs. It is removed at exit, except the logs when the run failed; a server
# that does not start prints the path of its log.
export CI=1
WEBQQ_CI_DIR=$(mktemp -d /tmp/webqq-ci.XXXXXX)
# The servers run as their own users (postgres): they must reach their files here.
chmod 0755 "$WEBQQ_CI_DIR"
export WEBQQ_CI_DIR
WEBQQ_CI_PG_BIN=""
WEBQQ_CI_PG_DATA=""
WEBQQ_CI_REDIS_PIDFILE=""

# A loopback TCP port nothing listens on: $1 if free, else one the kernel picks.
ci_free_port() {
    python - "$1" <<'EOF'
import socket, sys

def free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True

wanted = int(sys.argv[1])
if free(wanted):
    print(wanted)
else:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    print(f"port {wanted} is in use: using {port}", file=sys.stderr)
    print(port)
EOF
}

# Print the server's log path and its last lines, then fail.
ci_server_failed() {
    local name=$1 log=$2
    echo "$name did not start; its log: $log" >&2
    tail -n 20 "$log" >&2 2>/dev/null || true
    return 1
}

start_postgres() {
    local port log
    WEBQQ_CI_PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$WEBQQ_CI_PG_BIN" ] || { echo "postgresql not installed" >&2; return 1; }
    port=$(ci_free_port "${WEBQQ_CI_PG_PORT:-55432}")
    WEBQQ_CI_PG_DATA=$WEBQQ_CI_DIR/pg-data
    log=$WEBQQ_CI_DIR/postgresql.log
    mkdir "$WEBQQ_CI_PG_DATA"
    touch "$log"
    chown postgres "$WEBQQ_CI_PG_DATA" "$log"
    su postgres -c "$WEBQQ_CI_PG_BIN/initdb -D $WEBQQ_CI_PG_DATA -A trust -U postgres" \
        >"$WEBQQ_CI_DIR/initdb.log" 2>&1 || ci_server_failed "initdb" "$WEBQQ_CI_DIR/initdb.log"
    su postgres -c "$WEBQQ_CI_PG_BIN/pg_ctl -D $WEBQQ_CI_PG_DATA -o '-c listen_addresses=127.0.0.1 -p $port -k $WEBQQ_CI_PG_DATA' -l $log -w start" \
        >/dev/null || ci_server_failed "postgresql" "$log"
    su postgres -c "psql -h 127.0.0.1 -p $port -U postgres -c 'CREATE DATABASE webqq_test'" >/dev/null
    export WEBQQ_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$port/webqq_test"
    echo "postgresql on 127.0.0.1:$port (log: $log)"
}

start_redis() {
    local port log
    command -v redis-server >/dev/null || { echo "redis-server not installed" >&2; return 1; }
    port=$(ci_free_port "${WEBQQ_CI_REDIS_PORT:-56379}")
    log=$WEBQQ_CI_DIR/redis.log
    WEBQQ_CI_REDIS_PIDFILE=$WEBQQ_CI_DIR/redis.pid
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize yes \
        --dir "$WEBQQ_CI_DIR" --logfile "$log" --pidfile "$WEBQQ_CI_REDIS_PIDFILE" >/dev/null \
        || ci_server_failed "redis" "$log"
    # --daemonize returns before the server listens (or fails to): wait for an answer.
    local tries=0
    until redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; do
        tries=$((tries + 1))
        [ "$tries" -lt 100 ] || ci_server_failed "redis" "$log"
        sleep 0.1
    done
    export WEBQQ_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
    echo "redis on 127.0.0.1:$port (log: $log)"
}

# Stop what start_postgres and start_redis started, remove the run's directory; keep the
# logs when the run failed ($1: the exit status).
stop_services() {
    local status=${1:-0}
    if [ -n "$WEBQQ_CI_PG_DATA" ] && [ -f "$WEBQQ_CI_PG_DATA/postmaster.pid" ]; then
        su postgres -c "$WEBQQ_CI_PG_BIN/pg_ctl -D $WEBQQ_CI_PG_DATA -m fast -w stop" \
            >/dev/null 2>&1 || true
    fi
    if [ -n "$WEBQQ_CI_REDIS_PIDFILE" ] && [ -f "$WEBQQ_CI_REDIS_PIDFILE" ]; then
        local pid
        pid=$(cat "$WEBQQ_CI_REDIS_PIDFILE")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    if [ "$status" -eq 0 ]; then
        rm -rf "$WEBQQ_CI_DIR"
    else
        rm -rf "$WEBQQ_CI_PG_DATA"
        echo "servers' logs kept in $WEBQQ_CI_DIR" >&2
    fi
}

trap 'stop_services $?' EXIT

start_postgres
start_redis
