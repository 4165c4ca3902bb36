#!/usr/bin/env bash
# Relay benchmark (issue 4): N messages submitted by an EHR-like load (bench/load.py, 8 parallel
# SMTP sessions) through hisp node A to node B, end to end: from the first submission until the
# last message is in dr.jones's Maildir at B (discovery, seal, STARTTLS delivery, open, trust and
# revocation checks, Maildir). The reference, measured in the same run with the same load
# generator: a stock Postfix instance relaying the same messages (plain SMTP, no S/MIME) to Postfix's
# smtp-sink, until smtp-sink has them all. Prints messages per second and the ratio.
# A second reference (PAIR=1, the default) does the hops hisp does without S/MIME: two Postfix
# instances, STARTTLS from the load and between them, the second delivering into a Maildir.
# Each phase also shows the machine's CPU time per message and the load generator's part of it;
# the `floor` line sets four RSA-2048 private-key operations (what a referral and its MDN need, at
# `openssl speed`'s rate measured in the run) plus the generator's part against the relay's time.
#
#   bash bench/relay.sh [N]        (default N=400; SIZES="1024 51200" bytes; WORKERS=4 queue workers;
#                                   SESSIONS=8 parallel clients; PER_MESSAGE=1: a new connection,
#                                   STARTTLS and AUTH for every message, as some EHRs do; PAIR=0:
#                                   no Postfix pair; PF_TLS_LOG=1: Postfix logs its TLS sessions)
#
# Needs postfix (for postfix and smtp-sink) and root (private Postfix instances are started and
# stopped under a temporary directory). Every server listens on 127.0.0.1 only. Postfix's
# delivery to smtp-sink is plain SMTP, as the issue defines the reference.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
N=${1:-400}
SESSIONS=${SESSIONS:-8}
# HISP_BIN=PATH measures another build (to compare two builds in interleaved runs).
if [ -n "${HISP_BIN:-}" ]; then hisp=$HISP_BIN; else
  cargo build --release --quiet --bin hisp
  hisp="$CARGO_TARGET_DIR/release/hisp"
fi
work=$(mktemp -d)
pids=()
postfix_dirs=()
cleanup() {
  # RELAY_LOGS=DIR keeps the two nodes' logs and Postfix's.
  if [ -n "${RELAY_LOGS:-}" ]; then
    mkdir -p "$RELAY_LOGS" && cp "$work"/*.log "$RELAY_LOGS"/ 2>/dev/null
    for d in "${postfix_dirs[@]}"; do cp "$d/maillog" "$RELAY_LOGS/$(basename "$d").maillog" 2>/dev/null; done
  fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for d in "${postfix_dirs[@]}"; do postfix -c "$d/etc" stop >/dev/null 2>&1 || true; done
  # hisp stops in order on SIGTERM (at once when idle): wait for it before unmounting.
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  sleep 0.5
  mountpoint -q "$work" && umount "$work" 2>/dev/null
  rm -rf "$work" "$work.img"
}
trap cleanup EXIT
# Stopped by a signal: still stop the servers and remove the file system (the EXIT trap does).
trap 'exit 130' INT TERM
# Both systems keep their state (hisp's databases and Maildirs, Postfix's queue, smtp-sink's
# files) on a new journaled ext4 file system, as a server would. On the bare root file system of
# these machines (ext4 without a journal) every file created within minutes of a mass deletion
# (an earlier run's clean-up, or Postfix removing its queue files) walks all recently deleted
# inodes: up to 12% of the CPU, landing on whichever system runs next. FS=tmp keeps the plain
# temporary directory.
if [ "${FS:-ext4}" = ext4 ] && truncate -s 4G "$work.img" && mkfs.ext4 -q -F "$work.img" \
    && mount -o loop "$work.img" "$work"; then
  echo "state on a fresh journaled ext4 file system ($work)"
else
  echo "state in $work (FS=tmp, or no loop mount here)"
fi
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
# The machine's CPU time so far (user+system+iowait+...; idle apart): "busy idle" in clock ticks.
cpu_ticks() { awk '/^cpu / { idle = $5 + $6; busy = 0; for (i = 2; i <= NF; i++) busy += $i; print busy - idle, idle }' /proc/stat; }
busy_share() { awk -v a="$1" -v b="$2" -v c="$3" -v d="$4" 'BEGIN { printf "%.0f%%", 100 * (c - a) / ((c - a) + (d - b)) }'; }
count() { { find "$1" -type f 2>/dev/null || true; } | wc -l; }
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "nothing listens on $1" >&2; exit 1; }
# Waits until directory $1 holds $2 files; prints the time it happened. One process polling
# in-process (a `find | wc` every 20 ms took 5% of the CPU the systems under test share).
wait_files() {
  python3 - "$1" "$2" <<'PY'
import os, sys, time
path, want = sys.argv[1], int(sys.argv[2])
deadline = time.time() + 600
def count():
    try:
        return sum(len(files) for _, _, files in os.walk(path))
    except OSError:
        return 0
while count() < want:
    if time.time() > deadline:
        sys.exit(f"timed out: {count()} of {want} in {path}")
    time.sleep(0.01)
print(f"{time.time():.6f}")
PY
}

# Waits until neither node has anything queued (polls the queues, outside the measured time).
wait_settled() {
  for _ in $(seq 3000); do
    [ "$(node a queue list --json)" = "[]" ] && [ "$(node b queue list --json)" = "[]" ] && return 0
    sleep 0.05
  done
  echo "the nodes' queues did not empty" >&2; exit 1
}

# ---- hisp: node A (a.test) -> node B (b.test) ----
declare -A P
for n in a b; do for k in sub bb http dns; do P[$n$k]=$(port); done; done
for n in a b; do
  other=$([ $n = a ] && echo b || echo a)
  mkdir -p "$work/$n"
  cat >"$work/$n.toml" <<TOML
[ca]
base_url = "http://127.0.0.1:${P[${n}http]}"
[server]
hostname = "mx.$n.test"
submission = "127.0.0.1:${P[${n}sub]}"
backbone = "127.0.0.1:${P[${n}bb]}"
http = "127.0.0.1:${P[${n}http]}"
mail_dir = "$work/$n/mail"
[dns]
servers = ["127.0.0.1:${P[${other}dns]}"]
[dns_server]
listen = "127.0.0.1:${P[${n}dns]}"
mx_host = "mx.$n.test"
[delivery]
port = ${P[${other}bb]}
[queue]
workers = ${WORKERS:-4}
TOML
done
node_env() { echo HISP_CONFIG="$work/$1.toml" HISP_DB="$work/$1/hisp.db" HISP_KEK="bench-kek-of-node-$1-0123456789"; }
node() { local n=$1; shift; env $(node_env "$n") "$hisp" "$@"; }
password="bench password of dr.smith"
for n in a b; do
  u=$([ $n = a ] && echo dr.smith || echo dr.jones)
  node $n init >/dev/null
  node $n domain add $n.test >/dev/null
  node $n proofing approve $n.test --out-of-band --reason "benchmark node" >/dev/null
  echo "$password" | node $n address add $u@$n.test --password-stdin >/dev/null
  node $n ca init >/dev/null
  node $n ca export --out "$work/ca-$n.pem"
  node $n cert issue $u@$n.test >/dev/null
done
for n in a b; do for c in a b; do node $n anchor add "$work/ca-$c.pem" --domain $n.test --incoming --outgoing >/dev/null; done; done
# Started directly (not through the shell function, whose subshell would be what $! names), so
# the clean-up stops the daemons themselves.
for n in a b; do env $(node_env "$n") "$hisp" serve >"$work/$n.log" 2>&1 & pids+=($!); done
wait_port "${P[asub]}"; wait_port "${P[bbb]}"

# ---- Postfix instances, each private under a temporary directory ----
chmod 755 "$work"   # the postfix user must reach its data directories
# start_postfix NAME PORT: a Postfix instance in $work/NAME with smtpd on 127.0.0.1:PORT, relaying
# for 127.0.0.0/8 only; the main.cf lines on standard input are added.
start_postfix() {
  local dir="$work/$1" port=$2
  mkdir -p "$dir/etc" "$dir/queue" "$dir/data"
  { cat <<CF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
mail_owner = postfix
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = $1.bench.test
mydestination =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
default_destination_concurrency_limit = 20
alias_maps =
alias_database =
smtpd_tls_loglevel = ${PF_TLS_LOG:-0}
smtp_tls_loglevel = ${PF_TLS_LOG:-0}
CF
    cat; } >"$dir/etc/main.cf"
  # master.cf: smtpd on our port, nothing chrooted.
  awk -v port="$port" '
    /^smtp +inet/ { print "127.0.0.1:" port " inet n - n - - smtpd"; next }
    /^[a-z]/ && NF >= 8 { $5 = "n" }
    { print }' /etc/postfix/master.cf >"$dir/etc/master.cf"
  # The TLS proxy that lets the SMTP client keep TLS connections open (commented out by default).
  grep -q '^tlsproxy' "$dir/etc/master.cf" || echo "tlsproxy unix - - n - 0 tlsproxy" >>"$dir/etc/master.cf"
  chown -R postfix "$dir/data"
  postfix -c "$dir/etc" check >/dev/null 2>&1 || true
  postfix -c "$dir/etc" start >/dev/null 2>&1 || { echo "postfix $1 did not start:" >&2; cat "$dir/maillog" >&2; exit 1; }
  postfix_dirs+=("$dir")
}

# The issue's reference: a plain relay (no TLS) -> smtp-sink.
pf="$work/postfix"; mkdir -p "$pf/sink"; chown postfix "$pf/sink"
pf_port=$(port); sink_port=$(port)
start_postfix postfix "$pf_port" <<CF
relay_domains = b.test
transport_maps = inline:{ b.test=smtp:[127.0.0.1]:$sink_port }
smtp_tls_security_level = none
smtpd_tls_security_level = none
CF
smtp-sink -u postfix -d "$pf/sink/%M." 127.0.0.1:"$sink_port" 256 & pids+=($!)
wait_port "$pf_port"; wait_port "$sink_port"

# A second reference doing the hops hisp does, without S/MIME: Postfix "pa" takes the load over
# STARTTLS and relays it over STARTTLS (required) to Postfix "pb", which delivers it into a Maildir
# (fsynced, as hisp's). pa keeps its connections to pb open between messages and resumes TLS
# sessions, as hisp does (TLS connection reuse goes through tlsproxy). PAIR=0 leaves it out.
if [ "${PAIR:-1}" = 1 ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=pair.bench.test \
    -keyout "$work/pair-key.pem" -out "$work/pair-cert.pem" 2>/dev/null
  chmod 644 "$work/pair-key.pem"
  pa_port=$(port); pb_port=$(port)
  tls="smtpd_tls_security_level = may
smtpd_tls_cert_file = $work/pair-cert.pem
smtpd_tls_key_file = $work/pair-key.pem"
  mkdir -p "$work/pb/vmail"; chown postfix:postfix "$work/pb/vmail"
  start_postfix pb "$pb_port" <<CF
$tls
virtual_mailbox_domains = b.test
virtual_mailbox_base = $work/pb/vmail
virtual_mailbox_maps = inline:{ dr.jones@b.test=dr.jones/ }
virtual_minimum_uid = 1
virtual_uid_maps = static:$(id -u postfix)
virtual_gid_maps = static:$(id -g postfix)
CF
  start_postfix pa "$pa_port" <<CF
$tls
relay_domains = b.test
transport_maps = inline:{ b.test=smtp:[127.0.0.1]:$pb_port }
smtp_tls_security_level = encrypt
smtp_connection_cache_destinations = [127.0.0.1]:$pb_port
smtp_tls_session_cache_database = btree:\${data_directory}/smtp_scache
smtp_tls_connection_reuse = yes
CF
  wait_port "$pa_port"; wait_port "$pb_port"
fi

# measure SYSTEM BOX PORT [load.py options]: submits N messages of $size bytes to PORT (8 sessions)
# and waits until directory BOX holds them, end to end. Sets `rate` (msg/s), `machine_ms` (the
# machine's busy CPU time per message, everything on it counted), `load_ms` (the load generator's
# own share of that) and `row` (the line to print: time to submit, total time, rate, how busy the
# machine was, machine_ms and load_ms).
measure() {
  local system=$1 box=$2 port=$3 before busy0 idle0 busy1 idle1 t0 t1 submit load_cpu
  shift 3
  before=$(count "$box")
  read -r busy0 idle0 < <(cpu_ticks)
  t0=$(now)
  read -r submit load_cpu < <(python3 bench/load.py --port "$port" --count "$N" --sessions "$SESSIONS" --size "$size" \
    --sender dr.smith@a.test --recipient dr.jones@b.test --tag "$system-$size" ${PER_MESSAGE:+--connection-per-message} "$@")
  t1=$(wait_files "$box" $((before + N)))
  read -r busy1 idle1 < <(cpu_ticks)
  rate=$(awk -v n="$N" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", n / (b - a) }')
  machine_ms=$(awk -v n="$N" -v b="$((busy1 - busy0))" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", 1000 * b / hz / n }')
  load_ms=$(awk -v n="$N" -v c="$load_cpu" 'BEGIN { printf "%.2f", 1000 * c / n }')
  row=$(printf '%-8s %-8s %10s %10s %10.2f %12s %9s %11s %8s' "$size" "$system" "$N" "$submit" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" "$rate" "$(busy_share "$busy0" "$idle0" "$busy1" "$idle1")" \
    "$machine_ms" "$load_ms")
  measured_from=$t0
}

# The four RSA-2048 private-key operations a referral needs whatever does the work (A signs it, B
# decrypts it, B signs the processed MDN, A decrypts that), at OpenSSL's rate on this machine
# measured now: the floor under hisp's CPU time per message, before any TLS, SMTP, queue or disk.
rsa_ms=$(openssl speed -seconds 2 -mr rsa2048 2>/dev/null | awk -F: '/^\+F2:/ { printf "%.3f", 1000 / $4 }')
echo "RSA-2048 private-key operation (openssl speed, one core): ${rsa_ms} ms; four per referral: $(awk -v r="$rsa_ms" 'BEGIN { printf "%.2f", 4 * r }') ms"

printf '%-8s %-8s %10s %10s %10s %12s %9s %11s %8s\n' size system messages submit-s total-s msg/s cpu-busy machine-ms load-ms
run=0
for size in ${SIZES:-1024 51200}; do
  run=$((run + 1))
  # PERF="stat -e task-clock" (or "record -g -o FILE", ...) runs perf on both daemons for the hisp
  # phase; PERF="stat -a ..." on the whole machine instead.
  if [ -n "${PERF:-}" ]; then
    target=(-p "$(IFS=,; echo "${pids[*]:0:2}")"); [[ " $PERF " == *" -a "* ]] && target=()
    perf ${PERF} "${target[@]}" >"$work/perf-$size.txt" 2>&1 & perf_pid=$!; sleep 0.3
  fi
  # hisp, end to end into B's Maildir
  measure hisp "$work/b/mail/b.test/dr.jones/new" "${P[asub]}" --tls-auth "$password"
  hisp_rate=$rate
  hisp_load_ms=$load_ms
  [ -n "${PERF:-}" ] && { kill -INT "$perf_pid"; wait "$perf_pid" || true; cat "$work/perf-$size.txt" >&2; }
  # The processed MDNs (B to A) are still under way when the last referral lands: wait until both
  # queues are empty, so that work neither lands in the Postfix phase nor goes unreported.
  wait_settled
  echo "hisp $size: both queues empty $(awk -v a="$measured_from" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }') s after the start (MDNs included)" >&2
  echo "$row"
  # Postfix, end to end into smtp-sink
  measure postfix "$pf/sink" "$pf_port"
  echo "$row"
  awk -v h="$hisp_rate" -v p="$rate" -v s="$size" 'BEGIN { printf "ratio %s bytes: hisp / postfix = %.2f\n", s, h / p }'
  # What the issue's target asks: hisp's whole machine time per message within Postfix's. The RSA
  # operations alone, with the load generator's own time in hisp's phase, take this much of it.
  awk -v r="$rsa_ms" -v m="$machine_ms" -v l="$hisp_load_ms" -v s="$size" 'BEGIN {
    printf "floor %s bytes: 4 RSA private-key ops + the load generator in hisp phase = %.2f ms, %.0f%% of the %.2f ms of machine time per message the plain relay used\n",
      s, 4 * r + l, 100 * (4 * r + l) / m, m }'
  if [ "${PAIR:-1}" = 1 ]; then
    # The Postfix pair, end to end into pb's Maildir
    measure pf-pair "$work/pb/vmail/dr.jones/new" "$pa_port" --tls
    echo "$row"
    awk -v h="$hisp_rate" -v p="$rate" -v s="$size" 'BEGIN { printf "ratio %s bytes: hisp / postfix pair (TLS both hops, Maildir) = %.2f\n", s, h / p }'
  fi
done
# Nothing lost: every message accepted by A is delivered, none twice.
total=$(count "$work/b/mail/b.test/dr.jones/new")
echo "hisp delivered $total of $((run * N)) messages (none lost: $([ "$total" -eq $((run * N)) ] && echo yes || echo NO))"
