# Sourced by .ci/run: start the database servers the tests use, on loopback only, and
# export their URLs. A test that needs a server missing here is skipped locally with the
# reason; in CI (CI=1) it fails instead.
export CI=1

start_postgres() {
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$bin" ] || { echo "postgresql not installed" >&2; return 1; }
    local data=/tmp/webqq-ci-pg
    rm -rf "$data"; mkdir -p "$data"; chown postgres "$data"
    su postgres -c "$bin/initdb -D $data -A trust -U postgres >/dev/null"
    su postgres -c "$bin/pg_ctl -D $data -o '-c listen_addresses=127.0.0.1 -p 55432 -k /tmp' -l $data/log -w start >/dev/null"
    su postgres -c "psql -h 127.0.0.1 -p 55432 -U postgres -c 'CREATE DATABASE webqq_test' >/dev/null"
    export WEBQQ_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:55432/webqq_test"
}

start_redis() {
    command -v redis-server >/dev/null || { echo "redis-server not installed" >&2; return 1; }
    redis-server --bind 127.0.0.1 --port 56379 --save '' --appendonly no --daemonize yes >/dev/null
    export WEBQQ_TEST_REDIS_URL="redis://127.0.0.1:56379/0"
}

start_postgres
start_redis
