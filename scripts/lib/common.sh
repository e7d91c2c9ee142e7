# Shared helpers for scripts/test and scripts/demo. Sourced, not run.
# Every service binds to 127.0.0.1 and keeps its state under $CACHEKIT_STATE_DIR (default .cache/cachekit).

CACHEKIT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHEKIT_STATE_DIR=${CACHEKIT_STATE_DIR:-"$CACHEKIT_ROOT/.cache/cachekit"}
mkdir -p "$CACHEKIT_STATE_DIR"

# What each script installs comes from scripts/requirements.txt, the one list (checked against Package.swift by
# scripts/check-requirements). `requirement_values KIND NAME` prints one line's values; `requirement_packages USE`
# resolves a `use` line to apt packages (wheels are fetched by the steps that need them).
CACHEKIT_REQUIREMENTS="$CACHEKIT_ROOT/scripts/requirements.txt"

requirement_values() {
  local kind=$1 name=$2
  sed 's/#.*//' "$CACHEKIT_REQUIREMENTS" | awk -v kind="$kind" -v name="$name" '
    $1 == kind && (name == "*" || $2 == name) { for (i = 3; i <= NF; i++) if ($i != "-") print $i; found = 1 }
    END { if (!found) exit 1 }' || { echo "scripts/requirements.txt has no line \"$kind $name\"" >&2; return 1; }
}

requirement_packages() {
  local references reference kind name
  references=$(requirement_values use "$1") || return 1
  for reference in $references; do
    kind=${reference%%:*}
    name=${reference#*:}
    [ "$kind" = wheel ] && continue
    requirement_values "$kind" "$name"
  done | sort -u
}

# The wheel a `wheel NAME` line pins, e.g. `requirement_wheel pgserver` → pgserver==0.1.4.
requirement_wheel() { requirement_values wheel "$1" | head -1; }

# The pgserver release the list pins (its binaries live under $CACHEKIT_STATE_DIR/pgserver-<version>).
PGSERVER_WHEEL=$(requirement_wheel pgserver)
PGSERVER_VERSION=${PGSERVER_WHEEL#*==}

ensure_requirements() {
  local packages
  packages=$(requirement_packages "$1") || exit 1
  # shellcheck disable=SC2086
  ensure_apt_packages $packages
}

REDIS_PORT=${CACHEKIT_TEST_REDIS_PORT:-6390}
# A 3-primary, 3-replica Redis Cluster on six consecutive ports from here (their cluster bus ports are 10000 above).
REDIS_CLUSTER_PORT=${CACHEKIT_TEST_REDIS_CLUSTER_PORT:-6400}
POSTGRES_PORT=${CACHEKIT_TEST_POSTGRES_PORT:-55432}
POSTGRES_REPLICA_PORT=${CACHEKIT_TEST_POSTGRES_REPLICA_PORT:-$((POSTGRES_PORT + 1))}
OPENAI_PORT=${CACHEKIT_TEST_OPENAI_PORT:-18090}

log() { printf '[cachekit %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

ensure_swift() {
  if ! command -v swift >/dev/null 2>&1; then
    if [ -x /opt/swift/usr/bin/swift ]; then
      export PATH="/opt/swift/usr/bin:$PATH"
    else
      log "swift is not installed: install Swift 6.2 or newer (https://www.swift.org/install/linux/)"
      exit 1
    fi
  fi
}

ensure_apt_packages() {
  local missing=() started=$SECONDS
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  log "installing Debian packages: ${missing[*]} (apt-get; usually under a minute)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  log "installed ${#missing[@]} packages in $((SECONDS - started)) s"
}

# The newcomer path, proven on this machine: purge the C libraries the demo's product needs (computed from
# Package.swift by scripts/check-requirements, not taken from the list), run the demo's own install step, and build
# the product with nothing else added. Fails when the demo's list misses a package. Needs root (apt-get purge).
newcomer_check() {
  local computed started=$SECONDS sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  computed=$(./scripts/check-requirements --computed-packages cachekit | tr '\n' ' ')
  # Only what is installed: apt-get refuses a purge that names a package its (possibly never updated) lists lack.
  local installed=() package
  for package in $computed; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" && installed+=("$package")
  done
  log "newcomer check: cachekit needs $computed(from Package.swift); purging the ${#installed[@]} installed"
  if [ ${#installed[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get purge -y -qq "${installed[@]}" >/dev/null
  fi
  ./scripts/demo --install-only
  for package in $computed; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
      || { log "newcomer check: scripts/demo's install step did not install $package, which cachekit needs"; exit 1; }
  done
  log "newcomer check: building cachekit with only the demo's packages"
  swift build --product cachekit >"$CACHEKIT_STATE_DIR/newcomer-build.log" 2>&1 \
    || { tail -20 "$CACHEKIT_STATE_DIR/newcomer-build.log" >&2; log "newcomer check: cachekit does not build with the demo's packages"; exit 1; }
  log "newcomer check: passed in $((SECONDS - started)) s"
}

STARTED_SERVICES=()

start_services() {
  export CACHEKIT_MODEL_DIR=${CACHEKIT_MODEL_DIR:-$("$PWD/scripts/fetch-model")}
  start_redis
  start_redis_cluster
  start_postgres
  start_postgres_replica
  start_fake_openai
}

# The loopback OpenAI-compatible server (scripts/lib/fake-openai.py): deterministic answers, fault injection.
start_fake_openai() {
  python3 "$PWD/scripts/lib/fake-openai.py" "$OPENAI_PORT" >"$CACHEKIT_STATE_DIR/fake-openai.log" 2>&1 &
  FAKE_OPENAI_PID=$!
  for _ in $(seq 1 50); do
    curl -s "http://127.0.0.1:$OPENAI_PORT/_stats" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -s "http://127.0.0.1:$OPENAI_PORT/_stats" >/dev/null || { log "the fake OpenAI server did not start"; cat "$CACHEKIT_STATE_DIR/fake-openai.log" >&2; exit 1; }
  STARTED_SERVICES+=(fake_openai)
  export CACHEKIT_TEST_OPENAI_URL="http://127.0.0.1:$OPENAI_PORT/v1"
  log "fake OpenAI server on 127.0.0.1:$OPENAI_PORT"
}

stop_fake_openai() {
  [ -n "${FAKE_OPENAI_PID:-}" ] && kill "$FAKE_OPENAI_PID" 2>/dev/null || true
}

# PostgreSQL 16 + pgvector from the PyPI wheel `pgserver` (Debian 12 has no pgvector package). The wheel is only
# unpacked for its binaries; the server runs as an unprivileged user (PostgreSQL refuses root), on loopback.
ensure_pgserver() {
  local wheel=$PGSERVER_WHEEL
  PG_HOME="$CACHEKIT_STATE_DIR/pgserver-$PGSERVER_VERSION"
  PG_BIN="$PG_HOME/pgserver/pginstall/bin"
  [ -x "$PG_BIN/postgres" ] && return 0
  log "fetching $wheel from PyPI (PostgreSQL 16 + pgvector binaries, about 11 MB, once)"
  local download="$CACHEKIT_STATE_DIR/downloads"
  mkdir -p "$download" "$PG_HOME"
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$download" "$wheel"
  python3 -m zipfile -e "$download"/pgserver-"$PGSERVER_VERSION"-*.whl "$PG_HOME"
  chmod +x "$PG_BIN"/*
}

pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u cachekit-pg -- "$@"
  else
    "$@"
  fi
}

start_postgres() {
  ensure_pgserver
  local data="$CACHEKIT_STATE_DIR/postgres-data"
  local socket="$CACHEKIT_STATE_DIR/postgres-run"  # socket and log, owned by the server's user
  if [ "$(id -u)" -eq 0 ]; then
    id cachekit-pg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin cachekit-pg
    # The unprivileged user must be able to reach the binaries and its data directory.
    chmod o+rx "$CACHEKIT_STATE_DIR" "$PG_HOME" 2>/dev/null || true
    local parent="$CACHEKIT_STATE_DIR"
    while [ "$parent" != "/" ]; do chmod o+x "$parent" 2>/dev/null || true; parent=$(dirname "$parent"); done
  fi
  pg_as_owner "$PG_BIN/pg_ctl" -D "$data" stop -m immediate >/dev/null 2>&1 || true
  rm -rf "$data" "$socket"
  mkdir -p "$data" "$socket"
  [ "$(id -u)" -eq 0 ] && chown cachekit-pg "$data" "$socket"
  pg_as_owner "$PG_BIN/initdb" -D "$data" -U cachekit --auth=trust --no-sync -E UTF8 >"$socket/initdb.log" 2>&1 \
    || { cat "$socket/initdb.log" >&2; exit 1; }
  pg_as_owner "$PG_BIN/pg_ctl" -D "$data" -l "$socket/postgres.log" -w -t 60 \
    -o "-p $POSTGRES_PORT -c listen_addresses=127.0.0.1 -k $socket -c fsync=off -c max_connections=200" start >/dev/null \
    || { cat "$socket/postgres.log" >&2; exit 1; }
  "$PG_BIN/createdb" -h 127.0.0.1 -p "$POSTGRES_PORT" -U cachekit cachekit
  STARTED_SERVICES+=(postgres)
  export CACHEKIT_POSTGRES_URL="postgresql://cachekit@127.0.0.1:$POSTGRES_PORT/cachekit"
  export CACHEKIT_PG_BIN="$PG_BIN" CACHEKIT_PG_DATA="$data" CACHEKIT_STATE_DIR
  export CACHEKIT_PG_CTL="$PWD/scripts/lib/pg-ctl.sh"
  log "postgres (pgvector) on 127.0.0.1:$POSTGRES_PORT"
}

stop_postgres() {
  pg_as_owner "$PG_BIN/pg_ctl" -D "$CACHEKIT_STATE_DIR/postgres-data" stop -m fast >/dev/null 2>&1 || true
}

# A streaming replica of the test server (pg_basebackup from the same wheel), on loopback, for semantic reads from a
# replica. Its data folder and the primary's socket folder are the unprivileged user's, as for the primary. `-c fast`:
# an immediate checkpoint (the default spread one made the backup wait about 90 s).
start_postgres_replica() {
  local data="$CACHEKIT_STATE_DIR/postgres-replica-data" socket="$CACHEKIT_STATE_DIR/postgres-run"
  pg_as_owner "$PG_BIN/pg_ctl" -D "$data" stop -m immediate >/dev/null 2>&1 || true
  rm -rf "$data"
  mkdir -p "$data"
  [ "$(id -u)" -eq 0 ] && chown cachekit-pg "$data"
  chmod 700 "$data"
  pg_as_owner "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$POSTGRES_PORT" -U cachekit -D "$data" -R -X stream -c fast \
    >"$socket/basebackup.log" 2>&1 || { cat "$socket/basebackup.log" >&2; exit 1; }
  pg_as_owner "$PG_BIN/pg_ctl" -D "$data" -l "$socket/postgres-replica.log" -w -t 60 \
    -o "-p $POSTGRES_REPLICA_PORT -c listen_addresses=127.0.0.1 -k $socket -c fsync=off -c max_connections=200 -c hot_standby_feedback=on" start >/dev/null \
    || { cat "$socket/postgres-replica.log" >&2; exit 1; }
  STARTED_SERVICES+=(postgres_replica)
  export CACHEKIT_POSTGRES_REPLICA_URL="postgresql://cachekit@127.0.0.1:$POSTGRES_REPLICA_PORT/cachekit"
  export CACHEKIT_PG_REPLICA_DATA="$data"
  log "postgres streaming replica on 127.0.0.1:$POSTGRES_REPLICA_PORT"
}

stop_postgres_replica() {
  pg_as_owner "$PG_BIN/pg_ctl" -D "$CACHEKIT_STATE_DIR/postgres-replica-data" stop -m fast >/dev/null 2>&1 || true
}

# Redis: no persistence, loopback only. An ACL user `cachekit-acl` (password `acl-secret`) exists for the
# authentication tests; the default user needs no password.
start_redis() {
  local dir="$CACHEKIT_STATE_DIR/redis"
  mkdir -p "$dir"
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    log "a Redis already answers on port $REDIS_PORT; stopping it first"
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    sleep 0.5
  fi
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
    --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
    --user cachekit-acl on '>acl-secret' '~*' '&*' '+@all' >/dev/null
  for _ in $(seq 1 50); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  redis-cli -p "$REDIS_PORT" ping >/dev/null || { log "redis-server did not start"; cat "$dir/redis.log" >&2; exit 1; }
  STARTED_SERVICES+=(redis)
  export CACHEKIT_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
  log "redis-server on 127.0.0.1:$REDIS_PORT"
}

stop_redis() {
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
}

# Redis Cluster: six nodes on loopback (no persistence; each keeps its nodes.conf in its own folder), joined by
# `redis-cli --cluster create --cluster-replicas 1`: three primaries with one replica each. cluster-node-timeout is
# 2 s, so a killed primary's replica takes over in about 3 s; replicas sync at once (no diskless-sync delay), and the
# cluster counts as ready when every replica's link to its primary is up (a replica that never synced cannot take
# over).
start_redis_cluster() {
  local dir="$CACHEKIT_STATE_DIR/redis-cluster" port nodes=() started=$SECONDS
  for port in $(seq "$REDIS_CLUSTER_PORT" $((REDIS_CLUSTER_PORT + 5))); do
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  done
  rm -rf "$dir"
  for port in $(seq "$REDIS_CLUSTER_PORT" $((REDIS_CLUSTER_PORT + 5))); do
    mkdir -p "$dir/$port"
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
      --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 --repl-diskless-sync-delay 0 \
      --dir "$dir/$port" --pidfile "$dir/$port/redis.pid" --logfile "$dir/$port/redis.log" >/dev/null
    nodes+=("127.0.0.1:$port")
  done
  for port in $(seq "$REDIS_CLUSTER_PORT" $((REDIS_CLUSTER_PORT + 5))); do
    for _ in $(seq 1 50); do
      redis-cli -p "$port" ping >/dev/null 2>&1 && break
      sleep 0.1
    done
  done
  STARTED_SERVICES+=(redis_cluster)
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 \
    || { log "redis-cli --cluster create failed"; cat "$dir/create.log" >&2; exit 1; }
  # Ready when the state is ok and every node sees three replicas (they attach a moment after the slots).
  for _ in $(seq 1 150); do
    grep -q "cluster_state:ok" <<<"$(redis-cli -p "$REDIS_CLUSTER_PORT" cluster info 2>/dev/null)" \
      && [ "$(redis-cli -p "$REDIS_CLUSTER_PORT" cluster nodes | grep -c ' slave ')" = 3 ] \
      && [ "$(for port in $(seq "$REDIS_CLUSTER_PORT" $((REDIS_CLUSTER_PORT + 5))); do
        redis-cli -p "$port" info replication; done | grep -c 'master_link_status:up')" = 3 ] && break
    sleep 0.1
  done
  grep -q "cluster_state:ok" <<<"$(redis-cli -p "$REDIS_CLUSTER_PORT" cluster info)" \
    || { log "the Redis Cluster did not reach cluster_state:ok"; cat "$dir/create.log" >&2; exit 1; }
  export CACHEKIT_REDIS_CLUSTER_URL="redis+cluster://127.0.0.1:$REDIS_CLUSTER_PORT,127.0.0.1:$((REDIS_CLUSTER_PORT + 1)),127.0.0.1:$((REDIS_CLUSTER_PORT + 2))"
  log "Redis Cluster (3 primaries + 3 replicas) on 127.0.0.1:$REDIS_CLUSTER_PORT-$((REDIS_CLUSTER_PORT + 5)) in $((SECONDS - started)) s"
}

stop_redis_cluster() {
  local port
  for port in $(seq "$REDIS_CLUSTER_PORT" $((REDIS_CLUSTER_PORT + 5))); do
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  done
}

# The suite must never send KEYS, FLUSHDB or FLUSHALL: checked on the server's own command statistics.
check_redis_commandstats() {
  local forbidden
  forbidden=$(redis-cli -p "$REDIS_PORT" info commandstats | grep -E '^cmdstat_(keys|flushdb|flushall):' || true)
  if [ -n "$forbidden" ]; then
    log "forbidden Redis commands were sent: $forbidden"
    return 1
  fi
  log "redis commandstats: no KEYS, FLUSHDB or FLUSHALL ($(redis-cli -p "$REDIS_PORT" info commandstats | grep -c '^cmdstat_') distinct commands seen)"
  local port
  for port in $(seq "$REDIS_CLUSTER_PORT" $((REDIS_CLUSTER_PORT + 5))); do
    forbidden=$(redis-cli -p "$port" info commandstats 2>/dev/null | grep -E '^cmdstat_(keys|flushdb|flushall):' || true)
    if [ -n "$forbidden" ]; then
      log "forbidden Redis commands were sent to cluster node $port: $forbidden"
      return 1
    fi
  done
}

stop_services() {
  local status=$?
  for service in "${STARTED_SERVICES[@]:-}"; do
    [ -n "$service" ] && "stop_$service" || true
  done
  return $status
}

# The official `openai` Python package against `cachekit serve` (in front of the fake upstream): a venv under the
# state folder, created once.
run_sdk_tests() {
  local venv="$CACHEKIT_STATE_DIR/sdk-venv" port=${CACHEKIT_TEST_SERVE_PORT:-18101}
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import openai" 2>/dev/null; then
    log "installing the openai Python package into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "openai>=1.50"
  fi
  swift build --product cachekit >/dev/null
  local bin
  bin="$(swift build --show-bin-path)/cachekit"
  "$bin" serve --port "$port" --upstream "$CACHEKIT_TEST_OPENAI_URL" --log-level warning >"$CACHEKIT_STATE_DIR/serve.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  local status=0
  "$venv/bin/python" Tests/sdk/openai_sdk_test.py "http://127.0.0.1:$port/v1" "$CACHEKIT_TEST_OPENAI_URL" || status=$?
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ "$status" -ne 0 ]; then log "openai SDK tests failed; serve log:"; tail -20 "$CACHEKIT_STATE_DIR/serve.log" >&2; exit "$status"; fi
  log "openai SDK against cachekit serve: all checks passed"
}

# Every package under Examples/ and the backend scaffolding plugin, built against this checkout in one shared build
# folder (.build-examples: the examples' dependencies compile once), then run where they prove something: the
# prompt-prefix report, the SQLite backend's conformance suite, the multi-layer walk-through against this run's
# Redis and PostgreSQL, the Hummingbird app over HTTP (memory, then Redis after a restart, /metrics, SIGTERM), the
# swift-otel exporter into a local OTLP receiver, and a freshly scaffolded backend's own tests.
# Runs "$@" with its output in $CACHEKIT_STATE_DIR/example.log; on failure prints the log's last 40 lines and
# stops the run with "<what> failed". Then the caller shows what it wants of the log.
run_logged() {
  local what=$1
  shift
  "$@" >"$CACHEKIT_STATE_DIR/example.log" 2>&1 || { tail -40 "$CACHEKIT_STATE_DIR/example.log" >&2; log "$what failed"; exit 1; }
}

run_examples() {
  local scratch="$PWD/.build-examples" bin example log="$CACHEKIT_STATE_DIR/example.log"
  bin="$scratch/$(uname -m)-unknown-linux-gnu/debug"
  for example in prompt-prefix sqlite-backend multi-layer hummingbird-app tracing-otel; do
    log "building Examples/$example"
    run_logged "building Examples/$example" swift build --build-tests --package-path "Examples/$example" --scratch-path "$scratch"
  done

  log "Examples/prompt-prefix"
  run_logged "Examples/prompt-prefix" "$bin/PromptPrefixExample"
  sed 's/^/  /' "$log"

  log "Examples/sqlite-backend: swift test (the CacheKitTesting conformance suite)"
  run_logged "Examples/sqlite-backend's tests" swift test --skip-build --package-path Examples/sqlite-backend --scratch-path "$scratch"
  grep "Test run with" "$log" | sed 's/^/  /'

  log "Examples/multi-layer against 127.0.0.1 Redis and PostgreSQL"
  REDIS_URL="$CACHEKIT_REDIS_URL" POSTGRES_URL="$CACHEKIT_POSTGRES_URL" EMBEDDING_MODEL_DIRECTORY="$CACHEKIT_MODEL_DIR" \
    run_logged "Examples/multi-layer (a step did not go as expected)" timeout 120 "$bin/MultiLayerExample"
  sed 's/^/  /' "$log"

  log "Examples/hummingbird-app over HTTP"
  check_hummingbird_example "$bin/App"

  log "Examples/tracing-otel into a local OTLP/HTTP receiver"
  check_tracing_example "$bin/TracingExample"

  log "Plugins/NewBackend: scaffold a backend and run its tests"
  local scaffold="$CACHEKIT_STATE_DIR/scaffold-acme"
  rm -rf "$scaffold"
  run_logged "the scaffolding plugin" swift package --allow-writing-to-package-directory cachekit-new-backend --name acme --output "$scaffold"
  sed 's/^/  /' "$log"
  run_logged "the scaffolded backend's tests" swift test --package-path "$scaffold" --scratch-path "$scratch"
  grep "Test run with" "$log" | sed 's/^/  /'
  rm -rf "$scaffold"
  log "examples and the scaffolding plugin: all checks passed"
}

check_hummingbird_example() {
  local app=$1 port=${CACHEKIT_TEST_APP_PORT:-18112} pid body
  start_app() {
    REDIS_URL="$CACHEKIT_REDIS_URL" REDIS_KEY_PREFIX="example-app-$$" HTTP_PORT="$port" "$app" >>"$CACHEKIT_STATE_DIR/example-app.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/stats" >/dev/null && return; sleep 0.1; done
    log "the Hummingbird example did not start"; tail -5 "$CACHEKIT_STATE_DIR/example-app.log" >&2; exit 1
  }
  ask() { curl -sf -X POST "http://127.0.0.1:$port/ask" -H 'content-type: application/json' -d '{"question":"How do I reset my password?"}'; }
  expect_cache() {
    body=$(ask)
    case "$body" in *"\"cache\":\"$1\""*) log "  /ask → $1" ;; *) log "  /ask: expected $1, got $body"; kill "$pid"; exit 1 ;; esac
  }
  stop_app() {
    kill -TERM "$pid"
    local status=0
    wait "$pid" || status=$?
    [ "$status" -eq 0 ] || { log "  the app exited with $status after SIGTERM (expected a graceful 0)"; exit 1; }
  }
  : >"$CACHEKIT_STATE_DIR/example-app.log"
  start_app
  expect_cache MISS
  expect_cache HIT-L1
  # Read the whole page before matching: `curl | grep -q` under pipefail fails whenever grep exits before curl
  # has written everything (curl gets SIGPIPE, exit 23), which grew likelier as /metrics grew.
  body=$(curl -sf "http://127.0.0.1:$port/metrics") || { log "  GET /metrics failed"; kill "$pid"; exit 1; }
  grep -q '^cachekit_' <<<"$body" || { log "  /metrics has no cachekit_ series"; kill "$pid"; exit 1; }
  log "  /metrics has $(grep -c "^cachekit_" <<<"$body") cachekit_ samples"
  # Graceful shutdown lets an in-flight request finish: a new question (300 ms upstream) is under way when SIGTERM
  # arrives, and still gets its answer; then the app exits 0.
  curl -sf -X POST "http://127.0.0.1:$port/ask" -H 'content-type: application/json' -d '{"question":"in flight at shutdown"}' \
    >"$CACHEKIT_STATE_DIR/example-inflight.json" &
  local inflight=$!
  sleep 0.1
  stop_app
  wait "$inflight" || { log "  the request in flight at SIGTERM failed"; exit 1; }
  grep -q '"cache":"MISS"' "$CACHEKIT_STATE_DIR/example-inflight.json" || { log "  the in-flight request got no answer"; exit 1; }
  log "  SIGTERM with a request in flight: answered, then exit 0; restarting (empty memory)"
  start_app
  expect_cache HIT-L2
  stop_app
}

check_tracing_example() {
  local example=$1 port=${CACHEKIT_TEST_OTLP_PORT:-18113} receiver spans
  python3 scripts/lib/otlp-receiver.py "$port" &
  receiver=$!
  for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$port/spans" >/dev/null && break; sleep 0.1; done
  # Not run_logged: the receiver must be stopped on failure too.
  OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$port" OTEL_EXPORTER_OTLP_PROTOCOL=http/json timeout 60 "$example" >"$CACHEKIT_STATE_DIR/example.log" 2>&1 \
    || { tail -40 "$CACHEKIT_STATE_DIR/example.log" >&2; kill "$receiver"; log "Examples/tracing-otel failed"; exit 1; }
  sed 's/^/  /' "$CACHEKIT_STATE_DIR/example.log"
  spans=$(curl -sf "http://127.0.0.1:$port/spans")
  kill "$receiver" 2>/dev/null || true
  python3 - "$spans" <<'PY'
import json, sys
spans = json.loads(sys.argv[1])
names = [s["name"] for s in spans]
need = ["cachekit.lookup", "cachekit.get", "cachekit.embed", "cachekit.upstream", "cachekit.invalidate", "answer question"]
missing = [n for n in need if n not in names]
outcomes = sorted({s["attributes"].get("cachekit.outcome") for s in spans if s["name"] == "cachekit.lookup"} - {None})
similar = [s["attributes"].get("cachekit.similarity") for s in spans if s["name"] == "cachekit.lookup" and s["attributes"].get("cachekit.outcome") == "SEMANTIC-HIT"]
parents = {s["traceId"] for s in spans if s["name"] == "answer question"}
nested = all(s["traceId"] in parents for s in spans if s["name"] == "cachekit.lookup")
print(f"  {len(spans)} spans received: {sorted(set(names))}; lookup outcomes {outcomes}; semantic similarity {similar}")
if missing or outcomes != ["HIT-L1", "MISS", "SEMANTIC-HIT"] or not similar or not nested:
    print(f"  missing {missing}, outcomes {outcomes}, similarity {similar}, lookups inside the example's traces: {nested}")
    sys.exit(1)
PY
}

# DocC for every public module, with warnings as errors (a broken symbol link or an undocumented parameter fails),
# snippets from Snippets/ included. Archives in .build/plugins/Swift-DocC/outputs/.
DOC_TARGETS=(CacheKit CacheKitMemory CacheKitRedis CacheKitPGVector CacheKitOpenAI CacheKitEmbeddings CacheKitInvalidation CacheKitPromptPrefix CacheKitTesting)
build_docs() {
  local arguments=() target
  for target in "${DOC_TARGETS[@]}"; do arguments+=(--target "$target"); done
  if ! swift package --disable-sandbox generate-documentation "${arguments[@]}" --warnings-as-errors "$@" >"$CACHEKIT_STATE_DIR/docs.log" 2>&1; then
    grep -E "^error|warning:|-->" "$CACHEKIT_STATE_DIR/docs.log" | grep -v "prohibited flag\|unhandled" | head -30 >&2
    log "DocC failed (log: $CACHEKIT_STATE_DIR/docs.log)"
    exit 1
  fi
  log "DocC: ${#DOC_TARGETS[@]} archives in .build/plugins/Swift-DocC/outputs/, no warnings"
}

# A release `cachekit serve` on 127.0.0.1:$2 in front of the fake OpenAI server on 127.0.0.1:$1, for the benchmark
# scripts; sets SERVE_PIDS (kill them when done).
start_release_serve() {
  local fake_port=$1 serve_port=$2 bin
  swift build -c release --product cachekit >&2
  bin="$(swift build -c release --show-bin-path)/cachekit"
  python3 scripts/lib/fake-openai.py "$fake_port" >/dev/null 2>&1 &
  SERVE_PIDS="$!"
  "$bin" serve --port "$serve_port" --upstream "http://127.0.0.1:$fake_port/v1" --log-level error >/dev/null 2>&1 &
  SERVE_PIDS="$SERVE_PIDS $!"
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$serve_port/healthz" >/dev/null && return; sleep 0.1; done
  log "cachekit serve did not start on $serve_port"; exit 1
}
