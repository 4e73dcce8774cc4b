#!/usr/bin/env bash
# Brings up the real backing services Natter's service tests need, without Docker:
# the machine's own PostgreSQL and Redis, and a single-node Kafka broker run from
# jars that Maven fetches into .cache/kafka. See docs/services.md.
#
#   bash scripts/services.sh up|down|env|status|kafka-start|kafka-stop
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
CACHE="$ROOT/.cache"
KAFKA_DIR="$CACHE/kafka"
KAFKA_LIBS="$KAFKA_DIR/libs"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_PID="$KAFKA_DIR/kafka.pid"
KAFKA_LOG="$KAFKA_DIR/kafka.log"
KAFKA_PROPS="$KAFKA_DIR/server.properties"
KAFKA_SRC="$ROOT/scripts/kafka"
# Records which of the machine's services `up` had to start, so that `down`
# stops those and leaves alone the ones that were already running.
STARTED="$CACHE/services-started"

HOST=127.0.0.1
PG_PORT=5432
PG_DB=natter_test
REDIS_PORT=6379
KAFKA_PORT=9092
KAFKA_HEAP="${KAFKA_HEAP:--Xmx512m -Xms256m}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"

log() { printf 'services: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# A plain TCP connect, so that checking costs no JVM start and works for
# a broker this script did not start.
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

pg_up() { pg_isready -q -h "$HOST" -p "$PG_PORT" -t 2 2>/dev/null; }
redis_up() { [ "$(redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }
kafka_up() { port_open "$HOST" "$KAFKA_PORT"; }

# wait_for SECONDS WHAT COMMAND...: polls instead of sleeping a fixed time.
wait_for() {
  local limit=$1 what=$2 deadline=$((SECONDS + $1))
  shift 2
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || { log "$what did not answer within ${limit}s"; return 1; }
    sleep 0.5
  done
}

mark_started() {
  mkdir -p "$CACHE"
  grep -qx "$1" "$STARTED" 2>/dev/null || echo "$1" >>"$STARTED"
}
was_started() { grep -qx "$1" "$STARTED" 2>/dev/null; }
unmark_started() {
  [ -f "$STARTED" ] || return 0
  grep -vx "$1" "$STARTED" >"$STARTED.tmp" || true
  mv "$STARTED.tmp" "$STARTED"
}

# ---------------------------------------------------------------- PostgreSQL

pg_cluster_version() {
  # The highest installed major version, which is what the machine runs.
  find /etc/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null | sort -V | tail -n 1 || true
}

ensure_postgres() {
  if pg_up; then
    log "PostgreSQL answers on $HOST:$PG_PORT"
  else
    local ver
    ver="$(pg_cluster_version)"
    if [ -z "$ver" ] || ! command -v pg_ctlcluster >/dev/null; then
      die "PostgreSQL is not answering on $HOST:$PG_PORT and is not installed here (use docker compose, see docs/services.md)"
    fi
    log "starting PostgreSQL $ver"
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start 9>&-
    mark_started postgres
    wait_for 30 PostgreSQL pg_up
  fi
  if [ "$(psql -h "$HOST" -p "$PG_PORT" -U postgres -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" != 1 ]; then
    log "creating database $PG_DB"
    psql -q -h "$HOST" -p "$PG_PORT" -U postgres -d postgres -c "CREATE DATABASE $PG_DB"
  fi
}

stop_postgres() {
  was_started postgres || return 0
  local ver
  ver="$(pg_cluster_version)"
  if [ -n "$ver" ] && pg_up; then
    log "stopping PostgreSQL $ver (started by up)"
    pg_ctlcluster --skip-systemctl-redirect "$ver" main stop
  fi
  unmark_started postgres
}

# --------------------------------------------------------------------- Redis

ensure_redis() {
  if redis_up; then
    log "Redis answers on $HOST:$REDIS_PORT"
    return
  fi
  command -v redis-server >/dev/null \
    || die "Redis is not answering on $HOST:$REDIS_PORT and is not installed here (use docker compose, see docs/services.md)"
  log "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  # No persistence: test data is disposable and saving would only slow tests down.
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log 9>&-
  mark_started redis
  wait_for 15 Redis redis_up
}

stop_redis() {
  was_started redis || return 0
  if redis_up; then
    log "stopping Redis (started by up)"
    redis-cli -h "$HOST" -p "$REDIS_PORT" shutdown nosave >/dev/null || true
  fi
  unmark_started redis
}

# --------------------------------------------------------------------- Kafka

# The pid from the pid file, only if that process is still our broker: after a
# reboot the number may belong to something else, which must not be killed.
kafka_pid() {
  local pid
  [ -f "$KAFKA_PID" ] || return 1
  pid="$(cat "$KAFKA_PID")"
  if [ -z "$pid" ] || ! { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF "kafka.Kafka $KAFKA_PROPS"; then
    rm -f "$KAFKA_PID"
    return 1
  fi
  echo "$pid"
}

fetch_kafka_jars() {
  # The stamp ties the jars to the pom, so editing the pom (e.g. a new Kafka
  # version) fetches again, and an interrupted fetch never looks complete.
  local stamp want tmp
  want="$(sha256sum "$KAFKA_SRC/pom.xml" | cut -d' ' -f1)"
  stamp="$KAFKA_LIBS/.pom.sha256"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return
  fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch the Kafka jars"
  command -v java >/dev/null || die "Java 17+ is needed to run Kafka"
  log "fetching Kafka jars with Maven into ${KAFKA_LIBS#"$ROOT"/}"
  tmp="$KAFKA_DIR/libs.tmp"
  rm -rf "$tmp"
  # Called fully qualified because Maven 3.8's default dependency plugin is too
  # old. Its output goes to a file: even with -q -B, Maven 3.8 prints stray
  # colour codes, and the output only matters when the fetch fails.
  if ! mvn -q -B -f "$KAFKA_SRC/pom.xml" \
    org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp" >"$KAFKA_DIR/maven.log" 2>&1; then
    tail -n 30 "$KAFKA_DIR/maven.log" >&2
    die "fetching the Kafka jars failed (log: $KAFKA_DIR/maven.log)"
  fi
  echo "$want" >"$tmp/.pom.sha256"
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
}

write_kafka_config() {
  # Rewritten on every start so edits to the template take effect; '|' cannot
  # clash with the sed delimiter because the data path is escaped for it.
  local dirs="${KAFKA_DATA//\\/\\\\}"
  dirs="${dirs//&/\\&}"
  dirs="${dirs//|/\\|}"
  sed "s|@LOG_DIRS@|$dirs|" "$KAFKA_SRC/server.properties.template" >"$KAFKA_PROPS"
}

kafka_java() {
  java -Dlog4j2.configurationFile="$KAFKA_SRC/log4j2.xml" -cp "$KAFKA_LIBS/*" "$@"
}

format_kafka_storage() {
  # meta.properties means a past format succeeded; skipping it saves a JVM start.
  # Otherwise -g makes a retry after a half-done format harmless.
  [ -f "$KAFKA_DATA/meta.properties" ] && return
  local id
  if [ -s "$KAFKA_DIR/cluster.id" ]; then
    id="$(cat "$KAFKA_DIR/cluster.id")"
  else
    # Kafka's own form of a random UUID: 16 bytes, URL-safe base64, no padding.
    # Kafka never hands out ids starting with '-' because they read as options.
    id=-
    while [ "${id:0:1}" = - ]; do
      id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    done
    echo "$id" >"$KAFKA_DIR/cluster.id"
  fi
  log "formatting Kafka storage (cluster id $id)"
  mkdir -p "$KAFKA_DATA"
  kafka_java kafka.tools.StorageTool format -t "$id" -c "$KAFKA_PROPS" -g >>"$KAFKA_LOG" 2>&1 \
    || { tail -n 20 "$KAFKA_LOG" >&2; die "formatting Kafka storage failed"; }
}

start_kafka() {
  if kafka_up; then
    if kafka_pid >/dev/null; then
      log "Kafka answers on $HOST:$KAFKA_PORT (pid $(kafka_pid))"
    else
      log "Kafka answers on $HOST:$KAFKA_PORT (not started by this script; left alone)"
    fi
    return
  fi
  local pid
  if pid="$(kafka_pid)"; then
    # Ours but not listening: still starting from an earlier call, or wedged.
    log "Kafka (pid $pid) is running but not answering yet; waiting"
    wait_kafka_started "$pid"
    return
  fi
  mkdir -p "$KAFKA_DIR"
  fetch_kafka_jars
  # One log per run keeps "Kafka Server started" from matching an earlier run.
  [ -f "$KAFKA_LOG" ] && mv -f "$KAFKA_LOG" "$KAFKA_LOG.1"
  write_kafka_config
  format_kafka_storage
  local jar
  jar="$(find "$KAFKA_LIBS" -name 'kafka_2.13-*.jar' -printf '%f')"
  jar="${jar#kafka_2.13-}"
  log "starting Kafka ${jar%.jar} on $HOST:$KAFKA_PORT"
  # No old pid file may satisfy the wait for the new one below.
  rm -f "$KAFKA_PID"
  local t0=${EPOCHREALTIME/./}
  # setsid detaches the broker from this shell's process group, so that Ctrl-C
  # in the terminal or the end of `npm run` does not take it down. The inner
  # shell writes its own pid and execs java, so the pid file names the JVM
  # whether or not setsid had to fork.
  # shellcheck disable=SC2086,SC2016 # KAFKA_HEAP holds several JVM options; $$ is the inner shell's
  setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$KAFKA_PID" \
    java $KAFKA_HEAP -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_SRC/log4j2.xml" -cp "$KAFKA_LIBS/*" \
    kafka.Kafka "$KAFKA_PROPS" >>"$KAFKA_LOG" 2>&1 </dev/null 9>&- &
  # Give the inner shell the moment it needs to write the pid file.
  wait_for 5 "Kafka's pid file" test -s "$KAFKA_PID"
  pid="$(cat "$KAFKA_PID")"
  wait_kafka_started "$pid"
  local ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
  log "Kafka started in $((ms / 1000)).$(printf %03d $((ms % 1000)))s (pid $pid, log ${KAFKA_LOG#"$ROOT"/})"
}

# The log line comes after the broker has joined the quorum and opened its
# listener, so it is the better signal; the port is accepted too in case the
# logging setup was changed.
kafka_ready() {
  kill -0 "$1" 2>/dev/null || return 2
  grep -q 'Kafka Server started' "$KAFKA_LOG" 2>/dev/null || kafka_up
}

wait_kafka_started() {
  local pid=$1 deadline=$((SECONDS + KAFKA_START_TIMEOUT)) rc
  while :; do
    rc=0
    kafka_ready "$pid" || rc=$?
    [ "$rc" -eq 0 ] && return 0
    if [ "$rc" -eq 2 ]; then
      tail -n 30 "$KAFKA_LOG" >&2 || true
      rm -f "$KAFKA_PID"
      die "Kafka exited during startup (log: $KAFKA_LOG)"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 30 "$KAFKA_LOG" >&2 || true
      # A broker that comes up later, unannounced, would only confuse the next run.
      stop_kafka TERM
      die "Kafka did not start within ${KAFKA_START_TIMEOUT}s (log: $KAFKA_LOG)"
    fi
    sleep 0.5
  done
}

# stop_kafka TERM|KILL: TERM lets the broker close its logs cleanly (the next
# start then skips recovery); KILL is what fault-injection tests want.
stop_kafka() {
  local how=$1 pid deadline
  if ! pid="$(kafka_pid)"; then
    if kafka_up; then
      log "Kafka answers on $HOST:$KAFKA_PORT but was not started by this script; left alone"
      [ "$how" = KILL ] && return 1
    fi
    return 0
  fi
  log "stopping Kafka (pid $pid, SIG$how)"
  kill "-$how" "$pid" 2>/dev/null || true
  deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "Kafka did not exit within ${KAFKA_STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      deadline=$((SECONDS + 10))
      how=KILL
    fi
    sleep 0.2
  done
  rm -f "$KAFKA_PID"
  # The listener should be gone with the process; waiting for it makes the
  # next start (or a test expecting the outage) see a closed port.
  wait_for 10 "Kafka's port to close" bash -c "! timeout 2 bash -c 'exec 3<>/dev/tcp/$HOST/$KAFKA_PORT' 2>/dev/null"
}

# -------------------------------------------------------------------- verbs

# Serialises concurrent runs (two test runners calling `up` at once) so they
# cannot both start a broker. Every long-lived process started while holding
# it gets 9>&-, or it would inherit the lock and hold it for its whole life.
take_lock() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/services.lock"
  flock -w 120 9 || die "another services.sh is still running"
}

cmd_status() {
  local all=0
  if pg_up; then echo "postgres  up    $HOST:$PG_PORT"; else echo "postgres  down  $HOST:$PG_PORT"; all=1; fi
  if redis_up; then echo "redis     up    $HOST:$REDIS_PORT"; else echo "redis     down  $HOST:$REDIS_PORT"; all=1; fi
  local pid note=""
  if pid="$(kafka_pid)"; then note="  (pid $pid, started by services.sh)"; fi
  if kafka_up; then echo "kafka     up    $HOST:$KAFKA_PORT$note"; else echo "kafka     down  $HOST:$KAFKA_PORT$note"; all=1; fi
  return "$all"
}

usage() {
  cat <<EOF
usage: bash scripts/services.sh COMMAND

  up           start what is missing: PostgreSQL (+ database $PG_DB), Redis, Kafka
  down         stop what up started (Kafka always; PostgreSQL/Redis only if up started them)
  env          print export lines for the app: eval "\$(bash scripts/services.sh env)"
  status       say which services answer (exit 1 if any does not)
  kafka-stop   SIGKILL the broker (fault injection); data is kept
  kafka-start  start the broker again on its existing data

env: KAFKA_HEAP (default "-Xmx512m -Xms256m"), KAFKA_START_TIMEOUT (60), KAFKA_STOP_TIMEOUT (30)
EOF
}

main() {
  case "${1:-}" in
    up)
      take_lock
      ensure_postgres
      ensure_redis
      start_kafka
      ;;
    down)
      take_lock
      stop_kafka TERM
      stop_redis
      stop_postgres
      ;;
    env)
      echo "export DATABASE_URL=postgres://postgres@$HOST:$PG_PORT/$PG_DB REDIS_URL=redis://$HOST:$REDIS_PORT KAFKA_BROKERS=$HOST:$KAFKA_PORT"
      ;;
    status)
      cmd_status
      ;;
    kafka-stop)
      take_lock
      stop_kafka KILL
      ;;
    kafka-start)
      take_lock
      start_kafka
      ;;
    -h | --help | help)
      usage
      ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
