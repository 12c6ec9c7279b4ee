#!/usr/bin/env bash
# Latchkey benchmark: Latchkey (embedded and production mode) against
# panva/oidc-provider 9 on this machine, over loopback only.
#
#   bash bench/run.sh
#
# Builds Latchkey and the load driver in release mode, installs the pinned
# oidc-provider with npm, measures the aws-lc-rs signing and bcrypt ceilings,
# then, REPEAT times (alternating the order of the targets), starts each
# target fresh, measures its time to ready and idle RSS, drives every
# scenario (wrk for single requests, bench-driver for the flows), records its
# RSS after the load and stops it. Prints one report at the end and keeps it,
# with the raw JSON lines, in bench/results/. Everything it starts or creates
# (servers, the PostgreSQL database, the Redis keys under its prefix, its
# temporary directory) is removed on exit, also on failure or Ctrl-C.
#
# Knobs (environment variables) and how to read the table: docs/benchmarks.md.

set -Eeuo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)

REPEAT=${REPEAT:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
SIGNIN_CONCURRENCY=${SIGNIN_CONCURRENCY:-8}
REFRESH_CONCURRENCY=${REFRESH_CONCURRENCY:-16}
PROBES=${PROBES:-4}
QUIET=${QUIET:-3}
DRIVER_THREADS=${DRIVER_THREADS:-1}
TARGETS=${TARGETS:-latchkey-embedded latchkey-production oidc-provider latchkey-embedded-rsa3072}
SCENARIOS=${SCENARIOS:-discovery jwks cc_rs256 cc_es256 introspect userinfo refresh signin storm}
RSA3072_SCENARIOS=${RSA3072_SCENARIOS:-cc_rs256 refresh signin}
BCRYPT_COST=${BCRYPT_COST:-12}
LOG_LEVEL=${LOG_LEVEL:-warn}
LK_PORT=${LK_PORT:-18080}
OP_PORT=${OP_PORT:-18081}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
CEILING=${CEILING:-1}
CEILING_SECONDS=${CEILING_SECONDS:-3}
SKIP_BUILD=${SKIP_BUILD:-0}

REDIRECT_URI=http://localhost/cb
EMAIL=bench@example.com

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- checks

for url in "$PG_URL" "$REDIS_URL"; do
  case "$url" in
    *://127.0.0.1[:/]* | *://127.0.0.1 | *://localhost[:/]* | *://localhost | *@127.0.0.1[:/]* | *@127.0.0.1 | *@localhost[:/]* | *@localhost) ;;
    *) die "$url: loopback only (127.0.0.1 or localhost)" ;;
  esac
done
[ "$THREADS" -le "$CONNECTIONS" ] || die "THREADS ($THREADS) must not exceed CONNECTIONS ($CONNECTIONS)"
for tool in cargo node npm curl jq psql redis-cli openssl base64; do
  command -v "$tool" >/dev/null || die "$tool is needed"
done
if ! command -v wrk >/dev/null; then
  log "wrk is missing; installing the Debian package"
  if [ "$(id -u)" = 0 ]; then apt-get install -y wrk >/dev/null; else sudo apt-get install -y wrk >/dev/null; fi
fi
for port in "$LK_PORT" "$OP_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then die "port $port is in use (set LK_PORT / OP_PORT)"; fi
done
# Settings of the caller's shell must not leak into the targets.
while read -r var; do unset "$var"; done < <(compgen -e | grep '^LATCHKEY_' || true)

# ---------------------------------------------------------------- cleanup

RUN_ID="$(date +%Y%m%d-%H%M%S)-$$"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/latchkey-bench.XXXXXX")
PIDS=()
DATABASES=()
PREFIXES=()
CHILD=""

# Runs a command in the background and waits for it, so that a signal is
# handled at once rather than when the command ends; cleanup stops it.
run_child() {
  "$@" &
  CHILD=$!
  local rc=0
  wait "$CHILD" || rc=$?
  CHILD=""
  return "$rc"
}

stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

drop_database() {
  psql "$PG_URL/postgres" -qAtc "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" >/dev/null 2>&1 ||
    log "could not drop database $1"
}

delete_prefix() {
  redis-cli -u "$REDIS_URL" --scan --pattern "$1*" 2>/dev/null |
    xargs -r -n 500 redis-cli -u "$REDIS_URL" UNLINK >/dev/null 2>&1 || log "could not delete Redis keys $1*"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local pid db prefix
  [ -z "$CHILD" ] || stop_pid "$CHILD"
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  for db in "${DATABASES[@]}"; do drop_database "$db"; done
  for prefix in "${PREFIXES[@]}"; do delete_prefix "$prefix"; done
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

forget_pid() {
  local keep=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# ---------------------------------------------------------------- build

if [ "$SKIP_BUILD" != 1 ]; then
  log "building latchkey and the load driver (release)"
  (cd "$ROOT" && cargo build --release -p latchkey)
  (cd "$ROOT" && cargo build --release -p latchkey-bench-driver)
fi
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
LK_BIN="$TARGET_DIR/release/latchkey"
DRIVER="$TARGET_DIR/release/bench-driver"
CEILING_BIN="$TARGET_DIR/release/bench-ceiling"
for bin in "$LK_BIN" "$DRIVER" "$CEILING_BIN"; do [ -x "$bin" ] || die "$bin is missing (build first)"; done

OPDIR="$BENCH/oidc-provider"
if [ ! -d "$OPDIR/node_modules/oidc-provider" ] || [ ! -d "$OPDIR/node_modules/bcrypt" ] ||
  ! cmp -s "$OPDIR/package-lock.json" "$OPDIR/node_modules/.bench-lock"; then
  log "installing oidc-provider (npm ci)"
  (cd "$OPDIR" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$OPDIR/package-lock.json" "$OPDIR/node_modules/.bench-lock"
fi

mkdir -p "$BENCH/results"
RESULTS="$BENCH/results/$RUN_ID.jsonl"
REPORT="$BENCH/results/$RUN_ID.txt"
: >"$RESULTS"

emit() { jq -c "$@" >>"$RESULTS"; }

OP_VERSION=$(jq -r .version "$OPDIR/node_modules/oidc-provider/package.json")
emit -n \
  --arg title "$(date -u +%Y-%m-%dT%H:%MZ)" \
  --arg commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (uncommitted changes)')" \
  --arg machine "$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/{print $2}') GiB" \
  --arg versions "$("$LK_BIN" --version 2>/dev/null | head -1); oidc-provider $OP_VERSION on Node.js $(node --version); $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2); PostgreSQL $(psql "$PG_URL/postgres" -Atc 'show server_version' 2>/dev/null); Redis $(redis-cli -u "$REDIS_URL" info server 2>/dev/null | tr -d '\r' | awk -F: '/^redis_version/{print $2}')" \
  --arg load "wrk -t$THREADS -c$CONNECTIONS, ${WARMUP}s warm-up + ${DURATION}s; sign-in $SIGNIN_CONCURRENCY concurrent, refresh $REFRESH_CONCURRENCY chains, storm probes $PROBES (quiet ${QUIET}s first); repetitions $REPEAT, order alternating" \
  --arg settings "bcrypt cost $BCRYPT_COST; RSA-2048 signing keys except latchkey-embedded-rsa3072 (Latchkey's default 3072); Latchkey log level $LOG_LEVEL; rate limits raised to 1000000; oidc-provider: in-memory adapter, one Node.js process" \
  '{kind:"meta", title:$title, commit:$commit, machine:$machine, versions:$versions, load:$load, settings:$settings}'

# ---------------------------------------------------------------- ceilings

if [ "$CEILING" = 1 ]; then
  log "measuring the aws-lc-rs signing and bcrypt ceilings"
  "$CEILING_BIN" --seconds "$CEILING_SECONDS" --bcrypt-cost "$BCRYPT_COST" >>"$RESULTS"
fi

# ---------------------------------------------------------------- targets

PASSWORD="Bench-$(openssl rand -hex 12)-pw!"
export BENCH_USER_PASSWORD="$PASSWORD"

basic() { printf 'Basic %s' "$(printf '%s:%s' "$1" "$2" | base64 -w0)"; }
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
loopback() { sed -E 's#^http://localhost:#http://127.0.0.1:#' <<<"$1"; }

# Waits until URL answers 200; prints the milliseconds since $2 (ms epoch).
wait_ready() {
  local url=$1 t0=$2 pid=$3
  for _ in $(seq 3000); do
    if curl -sf -o /dev/null --max-time 1 "$url"; then echo $(($(now_ms) - t0)); return 0; fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.01
  done
  return 1
}

# Sets the target's variables: ISSUER, PID, WEB_ID/WEB_SECRET, CCR_*, CCE_*,
# LOGFILE, and READY_MS. $1 = target name, $2 = its directory.
LK_ENV=()
AUTH_PARAMS=()
start_latchkey() {
  local target=$1 dir=$2 bits=2048
  [ "$target" = latchkey-embedded-rsa3072 ] && bits=3072
  LK_ENV=(
    LATCHKEY_CONFIG=
    "LATCHKEY_DATA_DIR=$dir/data"
    "LATCHKEY_SERVER__BIND=127.0.0.1:$LK_PORT"
    "LATCHKEY_SERVER__PUBLIC_URL=http://localhost:$LK_PORT"
    LATCHKEY_SERVER__SHUTDOWN_TIMEOUT_SECS=2
    "LATCHKEY_PASSWORDS__BCRYPT_COST=$BCRYPT_COST"
    "LATCHKEY_KEYS__RSA_BITS=$bits"
    "LATCHKEY_LOG__LEVEL=$LOG_LEVEL"
    LATCHKEY_LIMITS__LOGIN_FAILURES_PER_ACCOUNT=1000000
    LATCHKEY_LIMITS__LOGIN_FAILURES_PER_ADDRESS_PER_MINUTE=1000000
    LATCHKEY_LIMITS__LOGIN_FAILURES_PER_ADDRESS_PER_HOUR=1000000
    LATCHKEY_LIMITS__AUTHORIZATION_REQUESTS_PER_ADDRESS_PER_MINUTE=1000000
  )
  if [ "$target" = latchkey-production ]; then
    local db prefix
    db="latchkey_bench_$(tr -c 'a-z0-9' '_' <<<"$RUN_ID" | head -c 40)_$REP"
    prefix="latchkey-bench-$RUN_ID-$REP:"
    psql "$PG_URL/postgres" -qAtc "CREATE DATABASE \"$db\"" >/dev/null
    DATABASES+=("$db")
    PREFIXES+=("$prefix")
    LK_ENV+=(
      "LATCHKEY_DATABASE__URL=$PG_URL/$db"
      "LATCHKEY_SESSIONS__URL=$REDIS_URL"
      "LATCHKEY_SESSIONS__PREFIX=$prefix"
      "LATCHKEY_SECRETS__ENCRYPTION_KEYS=$(openssl rand -base64 32)"
    )
    env "${LK_ENV[@]}" "$LK_BIN" migrate --json >/dev/null
  fi
  local web ccr cce
  web=$(env "${LK_ENV[@]}" "$LK_BIN" client create --name bench-web --first-party --redirect-uri "$REDIRECT_URI" --json)
  ccr=$(env "${LK_ENV[@]}" "$LK_BIN" client create --name bench-cc-rs256 --grant client_credentials --json)
  cce=$(env "${LK_ENV[@]}" "$LK_BIN" client create --name bench-cc-es256 --grant client_credentials --signing-alg ES256 --json)
  printf '%s\n' "$PASSWORD" |
    env "${LK_ENV[@]}" "$LK_BIN" user create --email "$EMAIL" --name "Bench User" --password-stdin --verified --json >/dev/null
  WEB_ID=$(jq -r .client_id <<<"$web") WEB_SECRET=$(jq -r .client_secret <<<"$web")
  CCR_ID=$(jq -r .client_id <<<"$ccr") CCR_SECRET=$(jq -r .client_secret <<<"$ccr")
  CCE_ID=$(jq -r .client_id <<<"$cce") CCE_SECRET=$(jq -r .client_secret <<<"$cce")
  ISSUER="http://localhost:$LK_PORT"
  AUTH_PARAMS=()
  LOGFILE="$dir/serve.log"
  local t0
  t0=$(now_ms)
  env "${LK_ENV[@]}" "$LK_BIN" serve >"$LOGFILE" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  READY_MS=$(wait_ready "http://127.0.0.1:$LK_PORT/healthz" "$t0" "$PID") || {
    tail -20 "$LOGFILE" >&2
    die "$target did not become ready"
  }
}

start_oidc_provider() {
  local dir=$1
  BENCH_USER_EMAIL=$EMAIL BCRYPT_COST=$BCRYPT_COST node "$OPDIR/setup.js" >"$dir/op.json"
  WEB_ID=$(jq -r .clients.web.client_id "$dir/op.json") WEB_SECRET=$(jq -r .clients.web.client_secret "$dir/op.json")
  CCR_ID=$(jq -r .clients.cc_rs256.client_id "$dir/op.json") CCR_SECRET=$(jq -r .clients.cc_rs256.client_secret "$dir/op.json")
  CCE_ID=$(jq -r .clients.cc_es256.client_id "$dir/op.json") CCE_SECRET=$(jq -r .clients.cc_es256.client_secret "$dir/op.json")
  ISSUER="http://localhost:$OP_PORT"
  # OpenID Connect grants offline_access only with prompt=consent, and
  # oidc-provider enforces it (Latchkey grants it to first-party clients);
  # server.js answers the consent prompt without a page.
  AUTH_PARAMS=(--auth-param prompt=consent)
  LOGFILE="$dir/op.log"
  local t0
  t0=$(now_ms)
  env NODE_ENV=production OP_PORT="$OP_PORT" OP_SETUP="$dir/op.json" BENCH_REDIRECT_URI="$REDIRECT_URI" \
    node "$OPDIR/server.js" >"$LOGFILE" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  READY_MS=$(wait_ready "http://127.0.0.1:$OP_PORT/.well-known/openid-configuration" "$t0" "$PID") || {
    tail -20 "$LOGFILE" >&2
    die "oidc-provider did not become ready"
  }
}

failed() { # scenario reason
  log "  $1: NOT MEASURED: $2"
  emit -n --argjson rep "$REP" --arg target "$TARGET" --arg scenario "$1" --arg reason "$2" \
    '{kind:"failed", rep:$rep, target:$target, scenario:$scenario, reason:$reason}'
}

record() { # default-scenario, JSON lines on stdin
  local line
  while read -r line; do
    [ -n "$line" ] || continue
    emit --argjson rep "$REP" --arg target "$TARGET" --arg scenario "$1" \
      '{kind:"load", rep:$rep, target:$target, scenario:(.scenario // $scenario)} + (del(.scenario))' <<<"$line"
    jq -r --arg s "$1" '"  \(.scenario // $s): \(.rps | floor) req/s, p50 \(.p50_ms) ms, p99 \(.p99_ms) ms, errors \(.errors)"' <<<"$line" >&2
  done
}

# wrk_scenario NAME URL METHOD AUTHORIZATION BODY
wrk_scenario() {
  local name=$1 url=$2
  export WRK_METHOD=$3 WRK_AUTHORIZATION=$4 WRK_BODY=$5
  if [ "$WARMUP" != 0 ]; then
    run_child wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" --timeout 5s -s "$BENCH/wrk/request.lua" "$url" \
      >/dev/null 2>&1 || true
  fi
  if run_child wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 5s -s "$BENCH/wrk/request.lua" "$url" \
    >"$TMP/wrk.out" 2>"$TMP/wrk.err"; then
    sort -u "$TMP/wrk.err" | head -5 | sed 's/^/  /' >&2
    grep '^{"requests"' "$TMP/wrk.out" | record "$name"
  else
    failed "$name" "wrk failed: $(head -3 "$TMP/wrk.err" | tr '\n' ' ')"
  fi
  unset WRK_METHOD WRK_AUTHORIZATION WRK_BODY
}

# driver COMMAND ARGS...: bench-driver as the web client of the current target.
driver() {
  local command=$1
  shift
  BENCH_CLIENT_SECRET=$WEB_SECRET DRIVER_THREADS=$DRIVER_THREADS run_child "$DRIVER" "$command" "$@" \
    --issuer "$ISSUER" --client-id "$WEB_ID" --email "$EMAIL" --redirect-uri "$REDIRECT_URI" "${AUTH_PARAMS[@]}"
}

# driver_scenario NAME COMMAND ARGS...
driver_scenario() {
  local name=$1
  shift
  if driver "$@" >"$TMP/driver.out" 2>"$TMP/driver.err"; then
    sed 's/^/  /' "$TMP/driver.err" >&2
    record "$name" <"$TMP/driver.out"
  else
    failed "$name" "$(tail -3 "$TMP/driver.err" | tr '\n' ' ')"
  fi
}

run_target() {
  TARGET=$1
  local dir="$TMP/$TARGET-$REP" scenarios=$SCENARIOS
  mkdir -p "$dir"
  [ "$TARGET" = latchkey-embedded-rsa3072 ] && scenarios=$RSA3072_SCENARIOS
  LOAD1=$(cut -d' ' -f1 /proc/loadavg)
  log "rep $REP/$REPEAT: $TARGET: setting up and starting (load average $LOAD1)"
  case "$TARGET" in
    latchkey-*) start_latchkey "$TARGET" "$dir" ;;
    oidc-provider) start_oidc_provider "$dir" ;;
    *) die "unknown target $TARGET" ;;
  esac
  sleep 1
  local rss_idle
  rss_idle=$(rss_kib "$PID")
  log "  ready in ${READY_MS} ms, RSS $((rss_idle / 1024)) MiB"

  local disco jwks token introspect userinfo
  disco=$(curl -sf "$ISSUER/.well-known/openid-configuration" --resolve "localhost:${ISSUER##*:}:127.0.0.1")
  jwks=$(loopback "$(jq -r .jwks_uri <<<"$disco")")
  token=$(loopback "$(jq -r .token_endpoint <<<"$disco")")
  introspect=$(loopback "$(jq -r .introspection_endpoint <<<"$disco")")
  userinfo=$(loopback "$(jq -r .userinfo_endpoint <<<"$disco")")
  local base
  base=$(loopback "$ISSUER")

  local at=""
  local s
  for s in $scenarios; do
    if ! kill -0 "$PID" 2>/dev/null; then
      failed "$s" "the server is not running any more (log: $(tail -3 "$LOGFILE" | tr '\n' ' '))"
      continue
    fi
    if [ -z "$at" ] && { [ "$s" = introspect ] || [ "$s" = userinfo ]; }; then
      at=""
      if driver tokens >"$TMP/tokens.json" 2>"$TMP/driver.err"; then at=$(jq -r .access_token "$TMP/tokens.json"); fi
      rm -f "$TMP/tokens.json"
      [ -n "$at" ] || { failed "$s" "no access token: $(tail -3 "$TMP/driver.err" | tr '\n' ' ')"; continue; }
    fi
    log "  $s"
    case "$s" in
      discovery) wrk_scenario discovery "$base/.well-known/openid-configuration" GET "" "" ;;
      jwks) wrk_scenario jwks "$jwks" GET "" "" ;;
      cc_rs256) wrk_scenario cc_rs256 "$token" POST "$(basic "$CCR_ID" "$CCR_SECRET")" grant_type=client_credentials ;;
      cc_es256) wrk_scenario cc_es256 "$token" POST "$(basic "$CCE_ID" "$CCE_SECRET")" grant_type=client_credentials ;;
      introspect) wrk_scenario introspect "$introspect" POST "$(basic "$WEB_ID" "$WEB_SECRET")" "token=$at" ;;
      userinfo) wrk_scenario userinfo "$userinfo" GET "Bearer $at" "" ;;
      refresh) driver_scenario refresh refresh --concurrency "$REFRESH_CONCURRENCY" --duration "$DURATION" ;;
      signin) driver_scenario signin signin --concurrency "$SIGNIN_CONCURRENCY" --duration "$DURATION" ;;
      storm)
        driver_scenario storm storm --concurrency "$SIGNIN_CONCURRENCY" --duration "$DURATION" \
          --probes "$PROBES" --quiet "$QUIET"
        ;;
      *) die "unknown scenario $s" ;;
    esac
  done

  local rss_after
  rss_after=$(rss_kib "$PID")
  emit -n --argjson rep "$REP" --arg target "$TARGET" --argjson ready "$READY_MS" \
    --argjson idle "${rss_idle:-0}" --argjson after "${rss_after:-0}" --argjson load "$LOAD1" \
    '{kind:"process", rep:$rep, target:$target, ready_ms:$ready, rss_idle_kib:$idle, rss_after_kib:$after, load1:$load}'
  log "  RSS after load $((rss_after / 1024)) MiB"
  local problems
  problems=$(grep -E ' (ERROR|WARN) |Error|panick' "$LOGFILE" | grep -v 'mail.smtp_url is not set' | grep -vi 'oidc-provider WARNING' || true)
  if [ -n "$problems" ]; then
    log "  $TARGET logged $(wc -l <<<"$problems") warning/error line(s); the first:"
    head -5 <<<"$problems" | cut -c1-400 | sed 's/^/    /' >&2
  fi
  stop_pid "$PID"
  forget_pid "$PID"
}

START=$(date +%s)
read -r -a ORDER <<<"$TARGETS"
for REP in $(seq "$REPEAT"); do
  if [ $((REP % 2)) = 0 ]; then
    REVERSED=()
    for ((i = ${#ORDER[@]} - 1; i >= 0; i--)); do REVERSED+=("${ORDER[i]}"); done
    THIS=("${REVERSED[@]}")
  else
    THIS=("${ORDER[@]}")
  fi
  for t in "${THIS[@]}"; do run_target "$t"; done
  for db in "${DATABASES[@]}"; do drop_database "$db"; done
  for prefix in "${PREFIXES[@]}"; do delete_prefix "$prefix"; done
  DATABASES=() PREFIXES=()
done
log "measured in $(($(date +%s) - START)) s"

"$DRIVER" report "$RESULTS" | tee "$REPORT"
log "report: $REPORT (raw results: $RESULTS)"
