#!/usr/bin/env bash
# make bench: the Go micro-benchmarks, then authbench against a freshly
# started authd on the embedded SQLite store and on PostgreSQL.
#
#   scripts/bench.sh [micro|load|all]        (default: all)
#
# Environment (all optional):
#   BENCH_DURATION   measured time of each run             (default 5s)
#   BENCH_REPEAT     runs of each scenario, medians printed (default 3)
#   BENCH_CONNS      connections                           (default 16)
#   BENCH_SCENARIOS  authbench -scenario                   (default all)
#   BENCH_BACKENDS   "sqlite postgres" or one of them       (default both)
#   BENCH_BENCHTIME  go test -benchtime                     (default 1s)
#   BENCH_POSTGRES_URL  server to create the database on   (default postgres://postgres@127.0.0.1:5432/postgres)
#   BENCH_PPROF      host:port: start authd with AUTHD_PPROF_ADDR there
#   BENCH_OUT        folder for the JSON results and logs  (default a temporary one, printed)
#   BENCH_IDLE_WAIT  seconds idle before the last RSS reading (default 30; 0 skips)
#
# On PostgreSQL it ends with the pgbench floor: the SQL of a refresh and of a
# revocation (scripts/pgbench/) run by pgbench alone, beside authd's figures;
# and the bare net/http baseline of the jwks and client-credentials
# scenarios (cmd/authbench-bare), run before and after authd's, and authd's
# ratio to it.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
DURATION=${BENCH_DURATION:-5s}
REPEAT=${BENCH_REPEAT:-3}
CONNS=${BENCH_CONNS:-16}
SCENARIOS=${BENCH_SCENARIOS:-all}
BACKENDS=${BENCH_BACKENDS:-sqlite postgres}
BENCHTIME=${BENCH_BENCHTIME:-1s}
PG_URL=${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
what=${1:-all}
export PGOPTIONS="--client-min-messages=warning"

work=$(mktemp -d "${TMPDIR:-/tmp}/authd-bench.XXXXXX")
out=${BENCH_OUT:-$work/out}
mkdir -p "$out"
server_pid=""
pg_db=""

cleanup() {
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	if [ -n "$pg_db" ]; then
		psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true
	fi
	rm -rf "$work/data-"*
}
trap cleanup EXIT

machine() {
	echo "machine: $(nproc) CPUs, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//'), $($GO version | cut -d' ' -f3)"
	echo "load average (1m 5m 15m): $(cut -d' ' -f1-3 /proc/loadavg)"
}

micro() {
	echo "== Go micro-benchmarks (benchtime $BENCHTIME)"
	machine
	# token issue per grant and introspection (server/oauth), JWT sign/verify
	# (keys, verify), password hash (identity).
	$GO test -run '^$' -bench . -benchmem -benchtime "$BENCHTIME" -timeout 20m \
		./keys/ ./identity/ ./server/oauth/ ./verify/ | tee "$out/micro.txt" | grep -E '^(Benchmark|ok|FAIL|---)'
	# The password-grant ceiling: cores / argon2id hash time.
	awk -v cpus="$(nproc)" '/^BenchmarkHash-/ { ns = $3 } /^BenchmarkHashParallel-/ { pns = $3 } END {
		if (ns > 0) printf "argon2id hash %.1f ms -> password-grant bound %d CPUs / hash time = %.0f req/s; target (80%%) %.0f req/s\n", ns/1e6, cpus, cpus*1e9/ns, 0.8*cpus*1e9/ns
		if (pns > 0) printf "argon2id hashes on all %d CPUs at once: %.0f per second (the machine'"'"'s real capacity)\n", cpus, 1e9/pns }' "$out/micro.txt" | tee "$out/bound.txt"
}

free_port() {
	local p
	for p in $(seq 18080 18180); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	echo "no free port in 18080-18180" >&2
	return 1
}

rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2/1024 }' "/proc/$1/status"; }

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# load BACKEND: start a fresh authd on BACKEND, run authbench, stop it.
load() {
	local backend=$1 port dsn data log t0 t1 idle after
	port=$(free_port)
	data="$work/data-$backend"
	mkdir -p "$data"
	case $backend in
	sqlite) dsn="sqlite://$data/authd.db" ;;
	postgres)
		pg_db="authd_bench_$$"
		psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null
		psql "$PG_URL" -qc "CREATE DATABASE $pg_db" >/dev/null
		dsn=$(echo "$PG_URL" | sed -E "s#/[^/?]*(\?|$)#/$pg_db\1#")
		;;
	*) echo "unknown backend $backend" >&2; return 1 ;;
	esac
	export AUTHD_DEV=true AUTHD_DATA_DIR="$data" AUTHD_DATABASE_URL="$dsn" \
		AUTHD_HTTP_ADDR="127.0.0.1:$port" AUTHD_ISSUER="http://127.0.0.1:$port" \
		AUTHD_RATE_LIMIT_TOKEN_PER_MIN=0 AUTHD_LOG_LEVEL=info AUTHD_REDIS_URL= \
		AUTHD_PPROF_ADDR="${BENCH_PPROF:-}"
	# Migrate first: start-up below is the start of a server on an existing database.
	bin/authd migrate up >/dev/null
	# The default log level: one access-log line per request, to a file.
	# (Dev mode also prints its credentials there: the file goes with $data.)
	log="$data/authd.log"
	# Started twice: the first start also creates dev mode's client and user
	# (an argon2id hash); the second is a restart on what exists, as a
	# deployment restarts. The load runs against the second.
	first=""
	for start in first restart; do
		t0=$(now_ms)
		bin/authd serve >/dev/null 2>>"$log" &
		server_pid=$!
		until curl -fs -o /dev/null "http://127.0.0.1:$port/readyz"; do
			if ! kill -0 "$server_pid" 2>/dev/null; then
				echo "authd exited:" >&2; cat "$log" >&2; return 1
			fi
			sleep 0.01
		done
		t1=$(now_ms)
		if [ "$start" = first ]; then
			first=$((t1 - t0))
			kill "$server_pid"
			wait "$server_pid" 2>/dev/null || true
		fi
	done
	sleep 2
	idle=$(rss_mib "$server_pid")
	echo
	echo "== authbench on $backend ($dsn)"
	machine
	echo "start-up to ready: first start $first ms (creating dev mode's client and user), restart $((t1 - t0)) ms (process start to the first 200 from /readyz)"
	echo "RSS idle: $idle MiB"
	"$work/authbench" -issuer "http://127.0.0.1:$port" -authd bin/authd -label "$backend" \
		-scenario "$SCENARIOS" -c "$CONNS" -d "$DURATION" -repeat "$REPEAT" -pid "$server_pid" \
		-o "$out/authbench-$backend.json"
	after=$(rss_mib "$server_pid")
	echo "RSS after the runs: $after MiB (peak $(awk '/^VmHWM:/ { printf "%.1f", $2/1024 }' "/proc/$server_pid/status") MiB)"
	if [ "${BENCH_IDLE_WAIT:-30}" -gt 0 ]; then
		sleep "${BENCH_IDLE_WAIT:-30}"
		echo "RSS after ${BENCH_IDLE_WAIT:-30} s idle: $(rss_mib "$server_pid") MiB"
	fi
	echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
	kill "$server_pid"
	wait "$server_pid" 2>/dev/null || true
	server_pid=""
	grep -E '"level":"(WARN|ERROR)"' "$log" >"$out/authd-$backend-warnings.log" || true
	echo "authd log: $(grep -c '^{' "$log") JSON lines, $(wc -l <"$out/authd-$backend-warnings.log") warnings or errors (in $out/authd-$backend-warnings.log)"
	if [ "$backend" = postgres ]; then
		psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null
		pg_db=""
	fi
	unset AUTHD_DEV AUTHD_DATA_DIR AUTHD_DATABASE_URL AUTHD_HTTP_ADDR AUTHD_ISSUER \
		AUTHD_RATE_LIMIT_TOKEN_PER_MIN AUTHD_LOG_LEVEL AUTHD_REDIS_URL AUTHD_PPROF_ADDR
}

# floor: the SQL of a refresh and of a revocation, as authd sends it, run
# by pgbench alone (no HTTP, no authd) on a fresh database at the same
# concurrency: what PostgreSQL on this machine allows; printed beside authd's
# figure from the run before.
floor() {
	local db dsn secs json a
	if ! command -v pgbench >/dev/null; then
		echo "pgbench floor: pgbench is not installed (Debian: postgresql-client); skipped"
		return
	fi
	db="authd_floor_$$"
	pg_db=$db
	psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
	psql "$PG_URL" -qc "CREATE DATABASE $db" >/dev/null
	dsn=$(echo "$PG_URL" | sed -E "s#/[^/?]*(\?|$)#/$db\1#")
	AUTHD_DATABASE_URL="$dsn" AUTHD_SECRET=pgbench-floor-not-a-secret-0123456789abcdef bin/authd migrate up >/dev/null
	psql "$dsn" -q -f scripts/pgbench/setup.sql >/dev/null
	secs=$(echo "$DURATION" | sed -E 's/s$//')
	json="$out/authbench-postgres.json"
	echo
	echo "== pgbench floor: the same SQL without authd ($CONNS connections, ${secs}s each, same machine)"
	for s in refresh revoke; do
		tps=$(pgbench -n -M prepared -c "$CONNS" -j 2 -T "$secs" -D k=0 -f "scripts/pgbench/$s.sql" "$dsn" 2>&1 |
			awk '/^tps/ { printf "%.0f", $3 }')
		a=""
		if [ -f "$json" ] && command -v jq >/dev/null; then
			a=$(jq -r --arg s "$s" '[(.medians // .runs)[] | select(.scenario == $s and .op == $s) | .rps][0] // empty | floor' "$json")
		fi
		if [ -n "$a" ] && [ -n "$tps" ] && [ "$tps" -gt 0 ]; then
			echo "  $s: pgbench $tps tx/s; authd $a req/s ($((100 * a / tps)) % of the floor)"
		else
			echo "  $s: pgbench ${tps:-?} tx/s"
		fi
	done
	psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
	pg_db=""
}

# bare WHEN: authbench's jwks and client-credentials scenarios against
# cmd/authbench-bare, a bare net/http server doing the same ES256 signature
# with nothing else (no store, limits, logs, metrics). It runs twice, before
# and after authd's runs (WHEN: before, after): this machine's speed drifts
# over minutes, and a single baseline taken minutes away from authd's runs
# compares two moods of it. After the second run it prints authd's ratio to
# the mean of the two, beside each.
bare() {
	local when=$1 port secret json s a b b1 b2 pid
	case " $SCENARIOS " in
	" all "|*jwks*|*client-credentials*) ;;
	*) return ;;
	esac
	port=$(free_port)
	secret=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
	AUTHBENCH_BARE_SECRET=$secret "$work/authbench-bare" -addr "127.0.0.1:$port" -client-id bare >/dev/null 2>&1 &
	pid=$!
	until curl -fs -o /dev/null "http://127.0.0.1:$port/.well-known/jwks.json"; do sleep 0.01; done
	echo
	echo "== bare net/http baseline, $when authd's runs (cmd/authbench-bare: the same ES256 signature, nothing else)"
	AUTHBENCH_CLIENT_SECRET=$secret "$work/authbench" -issuer "http://127.0.0.1:$port" -client-id bare -label bare \
		-scenario jwks,client-credentials -c "$CONNS" -d "$DURATION" -repeat "$REPEAT" -pid "$pid" \
		-o "$out/authbench-bare-$when.json" | sed -n '/^medians/,$p;/^results/,$p'
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	[ "$when" = after ] || return 0
	command -v jq >/dev/null || { echo "(jq not installed: ratios not computed)"; return; }
	rps() { [ -f "$1" ] && jq -r --arg s "$2" '[(.medians // .runs)[] | select(.scenario == $s and .op == $s) | .rps][0] // empty' "$1"; }
	echo
	echo "== authd against the bare baseline (the mean of the runs before and after)"
	for s in jwks client-credentials; do
		b1=$(rps "$out/authbench-bare-before.json" "$s" || true)
		b2=$(rps "$out/authbench-bare-after.json" "$s" || true)
		b=$(awk -v x="$b1" -v y="$b2" 'BEGIN { if (x != "" && y != "") print (x + y) / 2; else if (y != "") print y; else print x }')
		for json in "$out"/authbench-sqlite.json "$out"/authbench-postgres.json; do
			[ -f "$json" ] || continue
			a=$(rps "$json" "$s")
			[ -n "$a" ] && [ -n "$b" ] || continue
			awk -v s="$s" -v be="$(basename "$json" .json | sed 's/authbench-//')" -v a="$a" -v b="$b" -v b1="${b1:--}" -v b2="${b2:--}" \
				'function n(x) { return x == "-" ? x : sprintf("%.0f", x) }
				BEGIN { printf "  %s: authd (%s) %.0f req/s, bare %.0f req/s (before %s, after %s): ratio %.2f\n", s, be, a, b, n(b1), n(b2), a / b }'
		done
	done
	echo "  (targets, issue 10: jwks >= 0.85, client-credentials >= 0.80)"
}

targets() {
	cat <<'EOF'

== targets (issue 5; PostgreSQL, 16 connections, load generator on the same machine)
  client-credentials >= 2,000 req/s   refresh >= 1,000   introspect >= 5,000   jwks >= 15,000
  password >= 80 % of CPUs / argon2id hash time (see the bound above)
  p99 < 50 ms for every scenario but password; RSS < 60 MiB idle, < 150 MiB after a run; start-up < 1 s
== targets (issue 10; same setup)
  refresh >= 2,500 req/s   revocation of a live token >= 2,000 req/s   mixed p99 < 50 ms
  (the pgbench floor above is what the SQL alone allows on this machine)
  peer (Ory Hydra v2.3.0, JWT access tokens): client-credentials 95, refresh 88, introspect 494, jwks 728, revoke 267 req/s
== targets (issue 14; both stores)
  peak RSS < 100 MiB under password and mixed; < 60 MiB 30 s after the runs; idle < 40 MiB
  start-up (the restart above) < 200 ms; no throughput figure more than 5 % below before
EOF
}

case $what in
micro | all) micro ;;
esac
case $what in
load | all)
	echo
	echo "== building bin/authd (make build) and authbench"
	make -s build
	$GO build -o "$work/authbench" ./cmd/authbench
	$GO build -o "$work/authbench-bare" ./cmd/authbench-bare
	bare before
	for b in $BACKENDS; do load "$b"; done
	case " $BACKENDS " in *" postgres "*) floor ;; esac
	bare after
	targets
	echo "results (JSON) and logs: $out"
	;;
micro) ;;
*) echo "usage: $0 [micro|load|all]" >&2; exit 2 ;;
esac
