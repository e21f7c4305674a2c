#!/usr/bin/env bash
# A cluster with mutual TLS and a bearer token, configured by one YAML file (certificates made by
# openssl for this run): a job runs on it and its output equals the local run; an agent with the
# wrong token cannot register; clients with the wrong token or without a client certificate are
# refused; no call reaches an agent's shuffles without the token (pyarrow.flight as the
# intruder); unknown keys of the configuration file are refused with their line.
# Usage: cluster_security_test.sh path/to/sabot path/to/python
set -uo pipefail
sabot="$1"
python="$2"
source "$(dirname "$0")/cluster_lib.sh"

# --- certificates and tokens ---------------------------------------------------------------------
pki="$work/pki"
mkdir -p "$pki"
make_ca() {  # make_ca NAME
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$1" \
    -keyout "$pki/$1.key" -out "$pki/$1.pem" 2>/dev/null
}
make_cert() {  # make_cert NAME CA : a certificate for 127.0.0.1 and localhost signed by CA
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$pki/$1.key" -out "$pki/$1.csr" \
    2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' \
    >"$pki/$1.ext"
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/$2.pem" -CAkey "$pki/$2.key" -CAcreateserial \
    -days 2 -extfile "$pki/$1.ext" -out "$pki/$1.pem" 2>/dev/null
}
make_ca ca && make_cert node ca && make_ca rogue-ca && make_cert rogue rogue-ca
if [ -s "$pki/node.pem" ] && [ -s "$pki/rogue.pem" ]; then ok "certificates made by openssl"; else
  fail "certificates made by openssl"; finish; exit; fi
echo "cluster-token-$RANDOM$RANDOM" >"$work/token"
echo "not-the-token" >"$work/wrong-token"

port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cat >"$work/cluster.yaml" <<EOF
coordinator:
  host: 127.0.0.1
  port: $port
  address: grpc+tls://127.0.0.1:$port
  agent_timeout: 5s
  http_port: 0
agent:
  slots: 2
security:
  tls_cert: pki/node.pem
  tls_key: pki/node.key
  tls_ca: pki/ca.pem
  verify_clients: true
  token_file: token
EOF
cfg=(--config "$work/cluster.yaml")

# --- the cluster -------------------------------------------------------------------------------
"$sabot" coordinator "${cfg[@]}" >"$work/coordinator.out" 2>"$work/coordinator.err" &
coordinator_pid=$!
pids+=("$coordinator_pid")
for _ in $(seq 200); do grep -q "listening on grpc+tls://" "$work/coordinator.out" && break; sleep 0.1; done
if grep -q "listening on grpc+tls://127.0.0.1:$port" "$work/coordinator.out"; then
  ok "the coordinator serves TLS on the configured port"
else
  fail "the coordinator serves TLS" "$work/coordinator.out" "$work/coordinator.err"
  finish; exit
fi
start_agent a1 "${cfg[@]}"
a1_pid=$agent_pid
start_agent a2 "${cfg[@]}"
a2_pid=$agent_pid
if wait_agents 2 "${cfg[@]}"; then ok "two agents registered over mutual TLS with the token"; else
  fail "two agents registered" "$work/a1.err" "$work/coordinator.err"; fi
if grep -q "listening on grpc+tls://" "$work/a1.out"; then ok "agents serve TLS"; else
  fail "agents serve TLS" "$work/a1.out"; fi

# A job on the secure cluster equals the local run.
job_file() {  # job_file FILE OUT
  cat >"$1" <<EOF
operators:
  - generator_source: {table: transactions, rows: 50000, key_cardinality: 300, seed: 3}
    parallelism: 2
  - key_by: [user_id]
  - aggregate: [sum(amount), count(*)]
    parallelism: 2
  - parquet_sink: $2
EOF
}
job_file "$work/local.yaml" "$work/out/local"
job_file "$work/secure.yaml" "$work/out/secure"
"$sabot" run "$work/local.yaml" --quiet >"$work/local.out" 2>&1 || fail "local run" "$work/local.out"
if timeout 120 "$sabot" submit "$work/secure.yaml" "${cfg[@]}" --wait --quiet >"$work/secure.out" \
   2>"$work/secure.err"; then
  ok "a job runs on the secure cluster"
else
  fail "a job runs on the secure cluster" "$work/secure.err" "$work/a1.err"
fi
same_rows "the secure cluster's output equals local" "$work/out/local" "$work/out/secure"

# --- intruders -----------------------------------------------------------------------------------
start_agent intruder "${cfg[@]}" --token-file "$work/wrong-token"
for _ in $(seq 300); do grep -q "cannot register.*retrying" "$work/intruder.err" 2>/dev/null && break; sleep 0.1; done
if grep -q "cannot register with the coordinator.*nauthenticated" "$work/intruder.err" &&
   [ "$(live_agents "${cfg[@]}")" -eq 2 ]; then
  ok "an agent with the wrong token cannot register"
else
  "$sabot" jobs --agents "${cfg[@]}" >"$work/agents.out" 2>&1
  fail "an agent with the wrong token cannot register" "$work/intruder.err" "$work/agents.out"
fi
"$sabot" jobs "${cfg[@]}" --token-file "$work/wrong-token" >"$work/wrong.out" 2>"$work/wrong.err"
status=$?
if [ "$status" -eq 1 ] && grep -q "nauthenticated" "$work/wrong.err"; then
  ok "a client with the wrong token is refused"
else
  fail "a client with the wrong token is refused (exit $status)" "$work/wrong.err"
fi
"$sabot" jobs --coordinator "grpc+tls://127.0.0.1:$port" --tls-ca "$pki/ca.pem" \
  --token-file "$work/token" >"$work/nocert.out" 2>"$work/nocert.err"
status=$?
if [ "$status" -eq 1 ]; then ok "a client without a certificate is refused (mutual TLS)"; else
  fail "a client without a certificate is refused (exit $status)" "$work/nocert.out"; fi
"$sabot" jobs --coordinator "grpc+tls://127.0.0.1:$port" --tls-ca "$pki/ca.pem" \
  --tls-cert "$pki/rogue.pem" --tls-key "$pki/rogue.key" --verify-clients \
  --token-file "$work/token" >"$work/rogue.out" 2>"$work/rogue.err"
status=$?
if [ "$status" -eq 1 ]; then ok "a client with a certificate of another CA is refused"; else
  fail "a client with a certificate of another CA is refused (exit $status)" "$work/rogue.out"; fi

# The HTTP API holds mutual TLS too: without a client certificate the handshake fails; with the
# cluster's certificate and the token it answers.
http_url="$(sed -n 's#^sabot coordinator HTTP API and live view on \(https://[0-9.:]*\)/$#\1#p' \
  "$work/coordinator.out")"
"$python" - "$http_url" "$pki" "$(cat "$work/token")" >"$work/https.out" 2>&1 <<'EOF'
import ssl, sys, urllib.request
url, pki, token = sys.argv[1:]
def get(cert):
    context = ssl.create_default_context(cafile=pki + "/ca.pem")
    if cert:
        context.load_cert_chain(pki + "/node.pem", pki + "/node.key")
    request = urllib.request.Request(url + "/api/v1/jobs",
                                     headers={"Authorization": "Bearer " + token})
    try:
        return urllib.request.urlopen(request, context=context, timeout=30).status
    except Exception as error:
        return type(error).__name__
print("without certificate:", get(False))
print("with certificate:", get(True))
EOF
if [ -n "$http_url" ] && grep -q "^without certificate: [A-Za-z]*Error" "$work/https.out" &&
   grep -q "^with certificate: 200" "$work/https.out"; then
  ok "the HTTP API refuses clients without a certificate (mutual TLS)"
else
  fail "the HTTP API refuses clients without a certificate (mutual TLS)" "$work/https.out" \
    "$work/coordinator.out"
fi

# An agent's shuffles: every call without the token is refused before any handler runs; with it,
# the agent answers (its health action).
agent_location="$(sed -n 's/^sabot agent listening on //p' "$work/a1.out")"
"$python" - "$agent_location" "$pki" "$(cat "$work/token")" >"$work/flight.out" 2>&1 <<'EOF'
import sys
import pyarrow.flight as flight
location, pki, token = sys.argv[1:]
read = lambda name: open(f"{pki}/{name}", "rb").read()
client = flight.FlightClient(location, tls_root_certs=read("ca.pem"),
                             cert_chain=read("node.pem"), private_key=read("node.key"))
refused = 0
for headers in ([], [(b"authorization", b"Bearer not-the-token")]):
    options = flight.FlightCallOptions(headers=headers)
    try:
        list(client.do_get(flight.Ticket(b"/shuffle/job-1-e0/partition/0"), options).read_all())
    except flight.FlightUnauthenticatedError:
        refused += 1
    try:
        list(client.list_flights(options=options))
    except flight.FlightUnauthenticatedError:
        refused += 1
options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {token}".encode())])
answer = b"".join(r.body.to_pybytes() for r in client.do_action(flight.Action("health", b""), options))
print(f"refused {refused} of 4; with the token: {answer.decode()}")
sys.exit(0 if refused == 4 and answer == b"ok" else 1)
EOF
if [ $? -eq 0 ]; then ok "an agent's shuffles need the token ($(cat "$work/flight.out"))"; else
  fail "an agent's shuffles need the token" "$work/flight.out"; fi

stops_cleanly a1 "$a1_pid"
stops_cleanly a2 "$a2_pid"
stops_cleanly coordinator "$coordinator_pid"

# --- the configuration file ----------------------------------------------------------------------
printf 'coordinator:\n  host: 127.0.0.1\n  prot: 1\n' >"$work/bad.yaml"
"$sabot" coordinator --config "$work/bad.yaml" >"$work/badcfg.out" 2>"$work/badcfg.err"
status=$?
if [ "$status" -eq 2 ] && grep -q "bad.yaml:3:3: unknown key 'prot' in coordinator" "$work/badcfg.err"; then
  ok "an unknown key of the configuration file is refused with its line (exit 2)"
else
  fail "an unknown configuration key (exit $status)" "$work/badcfg.err"
fi
printf 'security:\n  tls_cert: pki/node.pem\n' >"$work/half.yaml"
"$sabot" agent --config "$work/half.yaml" --port 0 >"$work/half.out" 2>"$work/half.err"
status=$?
if [ "$status" -eq 2 ] && grep -q "both a certificate" "$work/half.err"; then
  ok "a certificate without its key is refused (exit 2)"
else
  fail "a certificate without its key (exit $status)" "$work/half.err"
fi
finish
