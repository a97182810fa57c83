#!/usr/bin/env bash
# Runs the Eclipse Paho MQTT interoperability suites (MQTT 3.1.1 client_test.py, MQTT 5.0
# client_test5.py) against Fleetwire's open listener and prints how many tests pass.
#
#   PAHO_TESTING_DIR=/path/to/paho.mqtt.testing scripts/conformance.sh
#
# PAHO_TESTING_DIR is a checkout of github.com/eclipse/paho.mqtt.testing (or its interoperability
# folder); the suites need python3 and nothing else. They are not part of this repository.
# Fleetwire runs from the sources (tsx) on a free port, with a fresh data folder, the ACL in
# test/fixtures/conformance.acl (the suites expect subscriptions to test/nosubscribe to fail) and
# a keep-alive maximum of 60 s (test_server_keep_alive expects Server Keep Alive 60).
# Options (environment): CONFORMANCE_SUITES="client_test.py client_test5.py" to run fewer,
# CONFORMANCE_TIMEOUT seconds per suite (default 600: a broker that never disconnects an
# over-eager publisher hangs test_flow_control2). Exit status: 0 when every test passed.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
paho="${PAHO_TESTING_DIR:?set PAHO_TESTING_DIR to a checkout of eclipse/paho.mqtt.testing}"
[ -f "$paho/interoperability/client_test.py" ] && paho="$paho/interoperability"
[ -f "$paho/client_test.py" ] || { echo "no client_test.py in $paho or $paho/interoperability" >&2; exit 2; }
suites="${CONFORMANCE_SUITES:-client_test.py client_test5.py}"
limit="${CONFORMANCE_TIMEOUT:-600}"
keepalive_max=60

work="$(mktemp -d "${TMPDIR:-/tmp}/fleetwire-conformance.XXXXXX")"
fleetwire_pid=""
cleanup() {
  if [ -n "$fleetwire_pid" ]; then
    kill "$fleetwire_pid" 2>/dev/null || true
    wait "$fleetwire_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

cp "$root/test/fixtures/conformance.acl" "$work/acl"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

echo "Fleetwire open listener on 127.0.0.1:$port (log: $work/fleetwire.log, kept only while running)"
(
  cd "$root"
  FLEETWIRE_DATA_DIR="$work/data" FLEETWIRE_HOST=127.0.0.1 FLEETWIRE_HTTP_PORT=0 \
    FLEETWIRE_MQTT_PORT=off FLEETWIRE_MQTTS_PORT=off FLEETWIRE_COAP_PORT=off \
    FLEETWIRE_MQTT_OPEN_PORT="$port" FLEETWIRE_MQTT_OPEN_ACL_FILE="$work/acl" \
    FLEETWIRE_MQTT_MAX_KEEPALIVE="$keepalive_max" FLEETWIRE_LOG_LEVEL=warn \
    exec node --import tsx src/cli.ts start
) > "$work/fleetwire.log" 2>&1 &
fleetwire_pid=$!
for _ in $(seq 1 120); do
  if python3 -c "import socket, sys; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then break; fi
  if ! kill -0 "$fleetwire_pid" 2>/dev/null; then cat "$work/fleetwire.log" >&2; echo "Fleetwire did not start" >&2; exit 1; fi
  sleep 0.5
done

# The suites hand their own options on to unittest.main(), which rejects -p: this runner gives
# each suite its port through its options and unittest only -v.
cat > "$work/run_suite.py" <<'PY'
import os, runpy, sys, unittest
suite, port = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.getcwd())
sys.argv = [suite, "-p", port]
main = unittest.main
unittest.main = lambda *a, **k: main(*a, **{**k, "argv": [suite, "-v"]})
runpy.run_path(suite, run_name="__main__")
PY

summary=""
status=0
for suite in $suites; do
  log="$work/${suite%.py}.log"
  echo "== $suite"
  set +e
  (cd "$paho" && timeout "$limit" python3 "$work/run_suite.py" "$suite" "$port") > "$log" 2>&1
  code=$?
  set -e
  ran="$(sed -nE 's/^Ran ([0-9]+) tests? .*/\1/p' "$log")"
  failures="$(sed -nE 's/^FAILED \(.*failures=([0-9]+).*/\1/p' "$log")"
  errors="$(sed -nE 's/^FAILED \(.*errors=([0-9]+).*/\1/p' "$log")"
  grep -E '^(FAIL|ERROR): ' "$log" || true
  if [ -z "$ran" ]; then
    line="$suite: did not finish (exit $code; timeout ${limit}s?)"
    tail -20 "$log"
    status=1
  else
    passed=$((ran - ${failures:-0} - ${errors:-0}))
    line="$suite: $passed/$ran passed"
    [ "$passed" -eq "$ran" ] || status=1
  fi
  echo "$line"
  summary+="$line"$'\n'
done

echo
echo "Paho interoperability suites against Fleetwire (open listener, ACL test/fixtures/conformance.acl, keep-alive max ${keepalive_max}s):"
printf '%s' "$summary"
exit $status
