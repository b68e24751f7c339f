# Sourced by .ci/run: start the database servers the tests use, on loopback only, and
# export their URLs. A test that needs a server missing here is skipped locally with the
# reason; in CI (CI=1) it fails instead. Ports can be moved with WEBQQ_CI_PG_PORT and
# WEBQQ_CI_REDIS_PORT (to run the script next to servers that are already up).
export CI=1
PG_PORT=${WEBQQ_CI_PG_PORT:-55432}
REDIS_PORT=${WEBQQ_CI_REDIS_PORT:-56379}

start_postgres() {
    local bin data
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$bin" ] || { echo "postgresql not installed" >&2; return 1; }
    data=$(mktemp -d /tmp/webqq-ci-pg.XXXXXX)
    chown postgres "$data"
    su postgres -c "$bin/initdb -D $data -A trust -U postgres >/dev/null"
    su postgres -c "$bin/pg_ctl -D $data -o '-c listen_addresses=127.0.0.1 -p $PG_PORT -k /tmp' -l $data/log -w start >/dev/null"
    su postgres -c "psql -h 127.0.0.1 -p $PG_PORT -U postgres -c 'CREATE DATABASE webqq_test' >/dev/null"
    export WEBQQ_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/webqq_test"
}

start_redis() {
    command -v redis-server >/dev/null || { echo "redis-server not installed" >&2; return 1; }
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --daemonize yes >/dev/null
    export WEBQQ_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
}

start_postgres
start_redis
