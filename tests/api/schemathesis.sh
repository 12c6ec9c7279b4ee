#!/usr/bin/env bash
# Property-based test of the admin API against its own OpenAPI document:
# schemathesis (PyPI, pinned) generates requests for every operation from
# /admin/api/v1/openapi.json, valid and invalid ones, and fails on any 5xx,
# any status code or content type the document does not list, and any answer
# that does not fit its schema.
#
# The stateful phase is left out: it chains the operations by their inferred
# links, and so would revoke its own API key half-way.
#
# It starts a throwaway Latchkey in embedded mode (a temporary folder,
# loopback only) with an API key holding every scope, and stops and removes
# it at the end whatever happens.
#
#   LATCHKEY_BIN=target/debug/latchkey bash tests/api/schemathesis.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

SCHEMATHESIS_VERSION=4.32.5
BIN=${LATCHKEY_BIN:-target/debug/latchkey}
VENV=${SCHEMATHESIS_VENV:-${HOME:-/root}/.cache/latchkey-schemathesis}
EXAMPLES=${EXAMPLES:-25}
# Settings of the caller's shell must not reach the server (LATCHKEY_BIN
# itself would be read as a configuration key).
while read -r v; do unset "$v"; done < <(compgen -e | grep '^LATCHKEY_' || true)

if [ ! -x "$BIN" ]; then
  echo "schemathesis.sh: no Latchkey binary at $BIN (build it with cargo build -p latchkey)" >&2
  exit 1
fi
if ! "$VENV/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
  fi
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

DIR=$(mktemp -d)
PID=
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$DIR"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export LATCHKEY_CONFIG=
export LATCHKEY_DATA_DIR="$DIR/data"
export LATCHKEY_SERVER__BIND="127.0.0.1:$PORT"
export LATCHKEY_SERVER__PUBLIC_URL="http://localhost:$PORT"
export LATCHKEY_PASSWORDS__BCRYPT_COST=10
export LATCHKEY_LOG__LEVEL=warn
# Key rotations are part of the run: quicker keys (the default is 3072 bits).
export LATCHKEY_KEYS__RSA_BITS=2048
# Thousands of requests with one key: its rate limit must not decide.
export LATCHKEY_LIMITS__ADMIN_API_REQUESTS_PER_KEY_PER_MINUTE=1000000

scopes=()
for s in users:read users:write clients:read clients:write groups:read groups:write policy:read policy:write \
  audit:read keys:read keys:write apikeys:write; do
  scopes+=(--scope "$s")
done
KEY=$("$BIN" apikey create --name schemathesis "${scopes[@]}" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])')
# Something for the read operations to find.
"$BIN" user create --email someone@example.com --name Someone --verified >/dev/null
"$BIN" group create --name Staff >/dev/null
"$BIN" client create --name Wiki --redirect-uri https://wiki.example.com/cb >/dev/null

"$BIN" serve >"$DIR/serve.log" 2>&1 &
PID=$!
for _ in $(seq 1 300); do
  curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz" && break
  kill -0 "$PID" 2>/dev/null || { cat "$DIR/serve.log" >&2; exit 1; }
  sleep 0.1
done

status=0
run() {
  "$VENV/bin/st" run "http://127.0.0.1:$PORT/admin/api/v1/openapi.json" \
    --url "http://127.0.0.1:$PORT" \
    --header "Authorization: Bearer $KEY" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples "$EXAMPLES" \
    --phases examples,coverage,fuzzing \
    --workers 1 \
    --generation-with-security-parameters false \
    --seed 20261202 \
    --generation-database none \
    --no-color ${ST_EXTRA:-} "$@" || status=$?
}
# Schemathesis reuses the ids it reads in answers, so revoking keys would
# sooner or later revoke its own: that operation runs last, on its own.
run --exclude-operation-id apikeys_revoke
run --include-operation-id apikeys_revoke
# Our own failures (a 500's detail, a panic), not the HTTP layer's notes
# on the malformed requests schemathesis sends on purpose.
if grep -q 'internal error\|panicked' "$DIR/serve.log"; then
  echo "schemathesis.sh: the server failed on some requests:" >&2
  grep 'internal error\|panicked' "$DIR/serve.log" | head -20 >&2
  status=1
fi
exit "$status"
