# Shared body of mixed_load.sh and mixed_load_plus.sh (POSIX sh: dash runs it).
# Sourced, not run: the two scripts set PLUS (0 or 1) and call load_main "$@".
#
# Open-model load: every second, for every operation, a batch launches the
# requested number of curl processes spread evenly across that second, whether
# or not earlier requests have finished, so the rate is the one asked for (a
# closed loop would slow down with the server and hide its latency). Each curl
# appends "op http_code time_total" to a per-run results file; the summary is
# computed from that file with sort and awk.

# C locale: awk and printf use "." for decimals, sort and comm agree on order.
LC_ALL=C
export LC_ALL

# --- defaults (the seed's example invocation) --------------------------------
URL=http://127.0.0.1:7100
DURATION=60s
RATE_LIST=64
RATE_DETAIL=12
RATE_CREATE=4
RATE_UPDATE=0
RATE_DELETE=0
CLEANUP_ONLY=0
if [ "${PLUS:-0}" = 1 ]; then
	RATE_LIST=40
	RATE_DETAIL=15
	RATE_CREATE=8
	RATE_UPDATE=4
	RATE_DELETE=3
fi
# Per-request timeout (s) and the cap on requests in flight, tunable from the
# environment. A request still running after MAX_TIME counts as failed.
MAX_TIME=${LOAD_MAX_TIME:-5}
MAX_INFLIGHT=${LOAD_MAX_INFLIGHT:-400}
# Failure rate (percent) at or above which the run exits 1 (the seed's 2 %).
FAIL_LIMIT=2
SEED_POSTS=5

PROG=${0##*/}
WORK=
STOP=0

die() {
	printf '%s: %s\n' "$PROG" "$*" >&2
	exit 2
}

log() { printf '%s\n' "$*" >&2; }

usage() {
	if [ "${PLUS:-0}" = 1 ]; then
		cat <<EOF
Usage: sh $PROG [--url URL] [--duration 60s] [--rate-list N] [--rate-detail N]
                  [--rate-create N] [--rate-update N] [--rate-delete N]
       sh $PROG [--url URL] --cleanup

Mixed load with writes against a Titanium deployment (through the load
balancer): list, detail, create, update (title becomes upd-...) and delete
(of posts this run created), each at its own rate per second. At the end it
deletes every post this run created, by id.

  --url URL          base URL of the load balancer (default $URL)
  --duration D       how long to send load: 60s, 90, 2m (default $DURATION)
  --rate-list N      GET /api/posts per second (default $RATE_LIST)
  --rate-detail N    GET /api/posts/{id} of a random seed post per second (default $RATE_DETAIL)
  --rate-create N    POST /api/posts per second (default $RATE_CREATE)
  --rate-update N    PATCH /api/posts/{id} of a seed post per second (default $RATE_UPDATE)
  --rate-delete N    DELETE /api/posts/{id} of a post this run created, per second (default $RATE_DELETE)
  --cleanup          only delete the posts that earlier runs against this URL left
                     behind (ids kept in \${TMPDIR:-/tmp}/titanium-load-<host>.ids)
  -h, --help         this help

Environment: LOAD_MAX_TIME per-request timeout in seconds (default 5),
LOAD_MAX_INFLIGHT cap on requests in flight (default 400).
Exit status: 0 ok, 1 failure rate >= ${FAIL_LIMIT}% (or cleanup failures), 2 bad usage or
unreachable URL, 130 interrupted.
EOF
	else
		cat <<EOF
Usage: sh $PROG [--url URL] [--duration 60s] [--rate-list N] [--rate-detail N] [--rate-create N]

Mixed load against a Titanium deployment (through the load balancer): post
list, post detail and post creation, each at its own rate per second.

  --url URL          base URL of the load balancer (default $URL)
  --duration D       how long to send load: 60s, 90, 2m (default $DURATION)
  --rate-list N      GET /api/posts per second (default $RATE_LIST)
  --rate-detail N    GET /api/posts/{id} of a random seed post per second (default $RATE_DETAIL)
  --rate-create N    POST /api/posts per second (default $RATE_CREATE)
  -h, --help         this help

Posts it creates are titled seed-... and load-...; their ids are kept in
\${TMPDIR:-/tmp}/titanium-load-<host>.ids so that
"sh mixed_load_plus.sh --url URL --cleanup" can delete them later.

Environment: LOAD_MAX_TIME per-request timeout in seconds (default 5),
LOAD_MAX_INFLIGHT cap on requests in flight (default 400).
Exit status: 0 ok, 1 failure rate >= ${FAIL_LIMIT}%, 2 bad usage or unreachable URL,
130 interrupted.
EOF
	fi
}

# --- argument parsing ----------------------------------------------------------

is_uint() {
	case $1 in '' | *[!0-9]*) return 1 ;; esac
	return 0
}

# duration_seconds 60s|90|2m|1h -> seconds on stdout.
duration_seconds() {
	d=$1
	unit=s
	case $d in
	*s) d=${d%s} ;;
	*m) d=${d%m} unit=m ;;
	*h) d=${d%h} unit=h ;;
	esac
	is_uint "$d" || return 1
	d=$((d + 0))
	case $unit in
	m) d=$((d * 60)) ;;
	h) d=$((d * 3600)) ;;
	esac
	[ "$d" -gt 0 ] || return 1
	echo "$d"
}

parse_args() {
	while [ $# -gt 0 ]; do
		opt=$1
		val=
		has_val=0
		case $opt in
		--*=*)
			val=${opt#*=}
			opt=${opt%%=*}
			has_val=1
			;;
		esac
		case $opt in
		-h | --help)
			usage
			exit 0
			;;
		--cleanup)
			[ "${PLUS:-0}" = 1 ] || die "unknown flag --cleanup (only mixed_load_plus.sh has it); see --help"
			[ $has_val = 0 ] || die "--cleanup takes no value"
			CLEANUP_ONLY=1
			shift
			continue
			;;
		--url | --duration | --rate-list | --rate-detail | --rate-create) ;;
		--rate-update | --rate-delete)
			[ "${PLUS:-0}" = 1 ] || die "unknown flag $opt (only mixed_load_plus.sh has it); see --help"
			;;
		*) die "unknown flag '$opt'; see --help" ;;
		esac
		if [ $has_val = 0 ]; then
			[ $# -ge 2 ] || die "$opt needs a value"
			val=$2
			shift
		fi
		shift
		case $opt in
		--url) URL=$val ;;
		--duration) DURATION=$val ;;
		--rate-list) RATE_LIST=$val ;;
		--rate-detail) RATE_DETAIL=$val ;;
		--rate-create) RATE_CREATE=$val ;;
		--rate-update) RATE_UPDATE=$val ;;
		--rate-delete) RATE_DELETE=$val ;;
		esac
		case $opt in
		--rate-*)
			is_uint "$val" || die "$opt: '$val' is not a whole number of requests per second"
			[ "$val" -le 10000 ] || die "$opt: $val is above 10000 per second; this sh+curl tool cannot send that"
			;;
		esac
	done
	case $URL in
	http://?* | https://?*) ;;
	*) die "--url: '$URL' must start with http:// or https://" ;;
	esac
	URL=${URL%/}
	DURATION_S=$(duration_seconds "$DURATION") || die "--duration: '$DURATION' is not a duration like 60s, 90 or 2m"
	# Leading zeros would make sh read 010 as octal.
	RATE_LIST=$((RATE_LIST + 0)) RATE_DETAIL=$((RATE_DETAIL + 0)) RATE_CREATE=$((RATE_CREATE + 0))
	RATE_UPDATE=$((RATE_UPDATE + 0)) RATE_DELETE=$((RATE_DELETE + 0))
	if [ $CLEANUP_ONLY = 0 ] && [ $((RATE_LIST + RATE_DETAIL + RATE_CREATE + RATE_UPDATE + RATE_DELETE)) -eq 0 ]; then
		die "every rate is 0: nothing to send"
	fi
	is_uint "$MAX_TIME" && [ "$MAX_TIME" -gt 0 ] || die "LOAD_MAX_TIME: '$MAX_TIME' is not a whole number of seconds > 0"
	is_uint "$MAX_INFLIGHT" && [ "$MAX_INFLIGHT" -gt 0 ] || die "LOAD_MAX_INFLIGHT: '$MAX_INFLIGHT' is not a whole number > 0"
}

# --- small tools ---------------------------------------------------------------

command -v curl >/dev/null 2>&1 || die "curl is required (apt-get install curl)"
HAVE_JQ=0
command -v jq >/dev/null 2>&1 && HAVE_JQ=1

# now_ms prints the time in milliseconds; where date has no %N (not GNU or
# busybox) it falls back to whole seconds and the scheduler to "sleep 1".
HAVE_NS=0
case $(date +%N 2>/dev/null) in '' | *[!0-9]*) ;; *) HAVE_NS=1 ;; esac
now_ms() {
	if [ $HAVE_NS = 1 ]; then
		date +%s%3N
	else
		echo "$(($(date +%s) * 1000))"
	fi
}

# ms_to_s 1250 -> 1.250 (sleep takes fractions; dash has no float arithmetic).
ms_to_s() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }

# sleep_ms 1250: sleeps 1.250 s; builds the argument without a subshell,
# since it runs ten times a second in the scheduler.
sleep_ms() {
	sm_r=$(($1 % 1000))
	if [ $sm_r -lt 10 ]; then
		sm_r=00$sm_r
	elif [ $sm_r -lt 100 ]; then
		sm_r=0$sm_r
	fi
	sleep "$(($1 / 1000)).$sm_r"
}

# json_field NAME < json: the first top-level-looking "NAME": value (number or
# string), without jq when it is missing.
json_field() {
	if [ $HAVE_JQ = 1 ]; then
		jq -r --arg k "$1" '.[$k] // empty' 2>/dev/null
	else
		awk -v k="$1" '{
			re = "\"" k "\"[ \t]*:[ \t]*(\"[^\"]*\"|-?[0-9.]+|true|false)"
			if (match($0, re)) {
				s = substr($0, RSTART, RLENGTH)
				sub(/^"[^"]*"[ \t]*:[ \t]*/, "", s)
				gsub(/"/, "", s)
				print s
				exit
			}
		}'
	fi
}

random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

# host_key: the state file name part for URL (host and port, nothing else).
host_key() {
	h=${URL#*://}
	h=${h%%/*}
	printf '%s' "$h" | tr -c 'A-Za-z0-9.-' '_'
}

state_file() { printf '%s/titanium-load-%s.ids' "${TMPDIR:-/tmp}" "$(host_key)"; }

# api METHOD PATH [JSON]: one synchronous call; body to $WORK/api.body, the
# status code on stdout.
api() {
	if [ -n "${3:-}" ]; then
		curl -sS -o "$WORK/api.body" -w '%{http_code}' --max-time "$MAX_TIME" -X "$1" \
			-H 'Content-Type: application/json' ${AUTH:+-H "$AUTH"} --data "$3" "$URL$2" 2>"$WORK/api.err"
	else
		curl -sS -o "$WORK/api.body" -w '%{http_code}' --max-time "$MAX_TIME" -X "$1" \
			${AUTH:+-H "$AUTH"} "$URL$2" 2>"$WORK/api.err"
	fi
}

api_fail() {
	log "$PROG: $1 failed: HTTP $2 $(head -c 300 "$WORK/api.body" 2>/dev/null) $(cat "$WORK/api.err" 2>/dev/null)"
	exit 2
}

check_reachable() {
	code=$(curl -s -o /dev/null -w '%{http_code}' --connect-timeout 3 --max-time 5 "$URL/api/health" 2>/dev/null)
	case $code in
	200) ;;
	000 | '') die "cannot reach $URL/api/health (no answer within 5 s); is the stack running and --url right?" ;;
	*) die "$URL/api/health answered HTTP $code, want 200; is --url the load balancer?" ;;
	esac
}

# login USER PASS: sets AUTH to the Authorization header of a fresh JWT.
login() {
	code=$(api POST /api/auth/login "{\"username\":\"$1\",\"password\":\"$2\"}")
	[ "$code" = 200 ] || return 1
	token=$(json_field access_token <"$WORK/api.body")
	[ -n "$token" ] || return 1
	AUTH="Authorization: Bearer $token"
}

# --- setup ---------------------------------------------------------------------

setup_user() {
	USERNAME=load$(date +%s)$(random_hex 3)
	PASSWORD=Lt9$(random_hex 12)
	AUTH=
	code=$(api POST /api/users "{\"username\":\"$USERNAME\",\"email\":\"$USERNAME@example.com\",\"password\":\"$PASSWORD\"}")
	[ "$code" = 201 ] || api_fail "register test user (POST /api/users)" "$code"
	login "$USERNAME" "$PASSWORD" || api_fail "log in test user (POST /api/auth/login)" "$code"
	log "test user $USERNAME registered and logged in"
}

# create_post TITLE: prints the new id; records it in the run's list and the
# state file at once, so an interrupted run can still be cleaned up.
create_post() {
	code=$(api POST /api/posts "{\"title\":\"$1\",\"content\":\"Load test post $1.\"}")
	[ "$code" = 201 ] || api_fail "create post $1 (POST /api/posts)" "$code"
	id=$(json_field id <"$WORK/api.body")
	[ -n "$id" ] || api_fail "create post $1: no id in the answer" "$code"
	echo "$id" >>"$WORK/setup_ids"
	echo "$id"
}

# --- the load --------------------------------------------------------------------
#
# Each second is cut into SLOTS slots; at the start of each slot one curl
# process is launched in the background with that slot's requests of every
# operation as parallel transfers (-Z). The arrival rate is thus fixed by the
# clock, as in an open-model load generator, at 1/SLOTS s granularity, while
# curl's process start-up (the expensive part on a small machine) is paid
# SLOTS times a second instead of once per request.

SLOTS=10
SLOT_MS=$((1000 / SLOTS))

# rand_seed N: a random seed post index in 1..N (LCG in shell arithmetic:
# no process per pick).
RND=$(($$ + $(date +%s) % 100000))
rand_index() {
	RND=$(((RND * 1103515245 + 12345) % 2147483648))
	R=$(((RND / 65536) % $1 + 1))
}

# slot_count RATE SLOT: how many of RATE per second fall in SLOT (even spread).
slot_count() { N=$(((($2 + 1) * $1) / SLOTS - ($2 * $1) / SLOTS)); }

# cfg_common OP SUFFIX: the per-transfer options every request shares.
cfg_common() {
	[ $first = 1 ] || printf 'next\n'
	first=0
	printf 'max-time = %s\noutput = "%s"\nwrite-out = "%s %%{http_code} %%{time_total} %s\\n"\n' \
		"$MAX_TIME" "${3:-/dev/null}" "$1" "$2"
}

# launch_slot SECOND SLOT: writes the slot's curl config and starts curl.
launch_slot() {
	cfg=$WORK/cfg/$1-$2
	n_req=0
	first=1
	{
		printf 'silent\nparallel\nparallel-immediate\n'
		slot_count "$RATE_LIST" "$2"
		i=0
		while [ $i -lt $N ]; do
			cfg_common list -
			printf 'url = "%s/api/posts?limit=20"\n' "$URL"
			i=$((i + 1))
		done
		n_req=$((n_req + N))
		slot_count "$RATE_DETAIL" "$2"
		i=0
		while [ $i -lt $N ]; do
			rand_index "$NSEEDS"
			eval "id=\$SEED_$R"
			cfg_common detail "$id"
			printf 'url = "%s/api/posts/%s"\n' "$URL" "$id"
			i=$((i + 1))
		done
		n_req=$((n_req + N))
		slot_count "$RATE_CREATE" "$2"
		i=0
		while [ $i -lt $N ]; do
			tag=$1-$2-$i
			cfg_common create "$WORK/body/$tag" "$WORK/body/$tag"
			printf 'url = "%s/api/posts"\nrequest = "POST"\nheader = "%s"\nheader = "Content-Type: application/json"\n' "$URL" "$AUTH"
			printf 'data = "{\\"title\\":\\"load-%s-%s\\",\\"content\\":\\"Load test post of second %s.\\"}"\n' "$RUN" "$tag" "$1"
			i=$((i + 1))
		done
		n_req=$((n_req + N))
		slot_count "$RATE_UPDATE" "$2"
		i=0
		while [ $i -lt $N ]; do
			rand_index "$NSEEDS"
			eval "id=\$SEED_$R"
			cfg_common update "$id"
			printf 'url = "%s/api/posts/%s"\nrequest = "PATCH"\nheader = "%s"\nheader = "Content-Type: application/json"\n' "$URL" "$id" "$AUTH"
			printf 'data = "{\\"title\\":\\"upd-%s-%s-%s-%s\\"}"\n' "$RUN" "$1" "$2" "$i"
			i=$((i + 1))
		done
		n_req=$((n_req + N))
		slot_count "$RATE_DELETE" "$2"
		i=0
		while [ $i -lt $N ]; do
			if [ -n "$DEL_IDS" ]; then
				id=${DEL_IDS%% *}
				DEL_IDS=${DEL_IDS#* }
				cfg_common delete "$id"
				printf 'url = "%s/api/posts/%s"\nrequest = "DELETE"\nheader = "%s"\n' "$URL" "$id" "$AUTH"
				n_req=$((n_req + 1))
			else
				echo "delete none 0" >>"$RES"
			fi
			i=$((i + 1))
		done
		printf 'parallel-max = %d\n' $((n_req > 0 ? (n_req < 300 ? n_req : 300) : 1))
	} >"$cfg"
	[ $n_req -gt 0 ] && curl -K "$cfg" >>"$RES" 2>/dev/null &
}

# harvest: reads the ids of posts created since the last harvest from their
# answers (bodies of 201s) into created; HARVESTED counts results lines read.
harvest() {
	awk -v from="$HARVESTED" -v list="$WORK/harvest.files" -v count="$WORK/harvest.count" '
		NR > from && $1 == "create" && $2 ~ /^2/ { print $4 > list }
		END { print NR > count; close(list) }' "$RES"
	HARVESTED=$(cat "$WORK/harvest.count")
	[ -s "$WORK/harvest.files" ] || return 0
	# shellcheck disable=SC2046
	awk 'FNR == 1 { got = 0 }
		!got && match($0, /"id"[ \t]*:[ \t]*("[^"]*"|[0-9]+)/) {
			s = substr($0, RSTART, RLENGTH); sub(/^"id"[ \t]*:[ \t]*/, "", s); gsub(/"/, "", s)
			print s; got = 1
		}' $(cat "$WORK/harvest.files") >>"$WORK/created"
	# shellcheck disable=SC2046
	rm -f $(cat "$WORK/harvest.files")
	: >"$WORK/harvest.files"
}

# claim_deletes N: takes up to N ids created by this run, not yet claimed,
# as this second's delete targets. Only the scheduler claims, so no post is
# deleted twice.
claim_deletes() {
	harvest
	DEL_IDS=$(awk -v from="$CLAIMED" -v n="$1" 'NR > from && NR <= from + n' "$WORK/created" | tr '\n' ' ')
	# shellcheck disable=SC2086
	set -- $DEL_IDS
	CLAIMED=$((CLAIMED + $#))
}

# run_load: the scheduler. Slot j starts at start + j * SLOT_MS on the wall
# clock: the wait before each slot absorbs the time spent launching, and a
# late scheduler catches up rather than lowering the rate.
run_load() {
	: >"$RES"
	mkdir -p "$WORK/cfg" "$WORK/body"
	CLAIMED=0 HARVESTED=0 LAUNCHED=0 DEL_IDS=
	PER_SEC=$((RATE_LIST + RATE_DETAIL + RATE_CREATE + RATE_UPDATE + RATE_DELETE))
	log "load: ${DURATION_S}s at list=$RATE_LIST detail=$RATE_DETAIL create=$RATE_CREATE$(
		[ "${PLUS:-0}" = 1 ] && printf ' update=%s delete=%s' "$RATE_UPDATE" "$RATE_DELETE"
	) per second against $URL"
	LOAD_START=$(now_ms)
	last_login=$LOAD_START
	k=0
	while [ $k -lt "$DURATION_S" ] && [ $STOP = 0 ]; do
		done_n=$(wc -l <"$RES")
		if [ $((LAUNCHED - done_n)) -gt "$MAX_INFLIGHT" ]; then
			# The server is not keeping up: skipping keeps this machine sane,
			# and the skipped requests count as failures in the summary.
			awk -v l="$RATE_LIST" -v d="$RATE_DETAIL" -v c="$RATE_CREATE" -v u="$RATE_UPDATE" -v x="$RATE_DELETE" 'BEGIN {
				for (i = 0; i < l; i++) print "list skipped 0"; for (i = 0; i < d; i++) print "detail skipped 0"
				for (i = 0; i < c; i++) print "create skipped 0"; for (i = 0; i < u; i++) print "update skipped 0"
				for (i = 0; i < x; i++) print "delete skipped 0" }' >>"$RES"
			log "second $k: $((LAUNCHED - done_n)) requests in flight (> $MAX_INFLIGHT): skipped this second's launches"
			slot=$SLOTS
		else
			[ "$RATE_DELETE" -gt 0 ] && claim_deletes "$RATE_DELETE"
			slot=0
		fi
		LAUNCHED=$((LAUNCHED + PER_SEC))
		while [ $slot -lt $SLOTS ] && [ $STOP = 0 ]; do
			launch_slot "$k" "$slot"
			slot=$((slot + 1))
			if [ $HAVE_NS = 1 ]; then
				wait_ms=$((LOAD_START + k * 1000 + slot * SLOT_MS - $(now_ms)))
				[ $wait_ms -gt 0 ] && sleep_ms $wait_ms
			else
				sleep_ms $SLOT_MS
			fi
		done
		[ $STOP = 0 ] || break
		k=$((k + 1))
		# A JWT lives 15 minutes by default: log in again every 5.
		if [ $HAVE_NS = 1 ] && [ $((RATE_CREATE + RATE_UPDATE + RATE_DELETE)) -gt 0 ]; then
			now=$(now_ms)
			if [ $((now - last_login)) -gt 300000 ]; then
				login "$USERNAME" "$PASSWORD" || log "re-login failed; writes may fail with 401"
				last_login=$now
			fi
		fi
	done
	LOAD_END=$(now_ms)
	# Interrupted: the load lasted until the last slot's end, not until the
	# signal was noticed.
	[ $STOP = 0 ] || LOAD_END=$((LOAD_START + (k * SLOTS + slot) * SLOT_MS))
	[ $STOP = 0 ] || log "interrupted after $k s: no new requests; waiting up to ${MAX_TIME}s for the ones in flight"
	# Every transfer has a max-time, so this wait is bounded.
	wait
	harvest
	awk '$1 == "delete" && ($2 == 204 || $2 == 200) { print $4 }' "$RES" >"$WORK/deleted"
}

# --- reporting ---------------------------------------------------------------------

# summary: the per-operation table; sets FAILED_PCT. Latency percentiles are
# over successful (2xx) requests, nearest rank.
summary() {
	elapsed_ms=$((LOAD_END - LOAD_START))
	[ $elapsed_ms -gt 0 ] || elapsed_ms=1
	echo
	echo "Summary ($(ms_to_s $elapsed_ms) s of load, latency of 2xx answers from curl time_total):"
	sort -k1,1 -k3,3n "$RES" | awk -v el="$elapsed_ms" -v pctfile="$WORK/failed_pct" -v ops="list detail create update delete" \
		-v rl="$RATE_LIST" -v rd="$RATE_DETAIL" -v rc="$RATE_CREATE" -v ru="$RATE_UPDATE" -v rx="$RATE_DELETE" '
	function pct(op, p,    n, r) {
		n = okn[op]; if (n == 0) return "-"
		r = int(p * n / 100); if (r * 100 < p * n) r++; if (r < 1) r = 1
		return sprintf("%.1f", lat[op, r] * 1000)
	}
	{
		op = $1; sent[op]++
		if ($2 ~ /^2[0-9][0-9]$/) { okn[op]++; lat[op, okn[op]] = $3 + 0 } else { fail[op]++; if ($2 == "none") none[op]++ }
	}
	END {
		target["list"] = rl; target["detail"] = rd; target["create"] = rc; target["update"] = ru; target["delete"] = rx
		printf "%-8s %7s %7s %7s %7s %9s %9s %9s %9s\n", "op", "sent", "ok", "failed", "fail%", "p50_ms", "p95_ms", "rate/s", "target/s"
		n = split(ops, o, " ")
		for (i = 1; i <= n; i++) {
			op = o[i]; if (!(op in sent) && target[op] == 0) continue
			s = sent[op] + 0; f = fail[op] + 0
			printf "%-8s %7d %7d %7d %7.2f %9s %9s %9.1f %9d\n", op, s, okn[op] + 0, f, (s ? 100 * f / s : 0), pct(op, 50), pct(op, 95), s * 1000 / el, target[op]
			ts += s; tf += f; if (none[op]) nn += none[op]
		}
		printf "%-8s %7d %7d %7d %7.2f %9s %9s %9.1f %9s\n", "total", ts, ts - tf, tf, (ts ? 100 * tf / ts : 0), "", "", ts * 1000 / el, ""
		if (nn) printf "note: %d delete slots found no post of this run to delete (raise --rate-create)\n", nn
		printf "%.2f\n", (ts ? 100 * tf / ts : 0) > pctfile
	}' 
	FAILED_PCT=$(cat "$WORK/failed_pct" 2>/dev/null)
	FAILED_PCT=${FAILED_PCT:-100}
	echo "failure rate: ${FAILED_PCT}% (limit ${FAIL_LIMIT}%)"
	codes=$(awk '$2 !~ /^2/ { c[$1 " " $2]++ } END { for (k in c) printf "%s%s=%d", (n++ ? ", " : ""), k, c[k] }' "$RES")
	[ -z "$codes" ] || echo "failures by op and code: $codes"
}

show_stats() {
	echo
	echo "Load balancer /stats ($URL/stats):"
	code=$(curl -s -o "$WORK/stats.json" -w '%{http_code}' --max-time 5 "$URL/stats" 2>/dev/null)
	if [ "$code" != 200 ]; then
		echo "  unavailable (HTTP ${code:-000})"
		return
	fi
	if [ $HAVE_JQ = 1 ]; then
		jq '{requests_per_second, avg_response_time_ms, p95_response_time_ms, success_rate, has_real_traffic, status, active_services, total_services}' "$WORK/stats.json"
	else
		for f in requests_per_second avg_response_time_ms p95_response_time_ms success_rate has_real_traffic status; do
			printf '  %s: %s\n' "$f" "$(json_field "$f" <"$WORK/stats.json")"
		done
	fi
}

# --- cleanup of posts --------------------------------------------------------------

# delete_ids FILE: deletes every id in FILE with the current AUTH through one
# curl (one connection). Prints "deleted gone failed"; ids that failed go to
# FILE.failed.
delete_ids() {
	: >"$1.failed"
	[ -s "$1" ] || {
		echo "0 0 0"
		return
	}
	awk -v u="$URL" '{ printf "url = \"%s/api/posts/%s\"\noutput = \"/dev/null\"\n", u, $1 }' "$1" >"$WORK/delete.curlrc"
	curl -s -K "$WORK/delete.curlrc" -X DELETE -H "$AUTH" --max-time "$MAX_TIME" \
		-w '%{http_code} %{url_effective}\n' 2>/dev/null >"$WORK/delete.out"
	awk -v failed="$1.failed" '
		{ id = $2; sub(/.*\//, "", id); seen[id] = 1
		  if ($1 == 204 || $1 == 200) d++; else if ($1 == 404) g++; else { f++; print id > failed } }
		END { printf "%d %d %d\n", d, g, f }' "$WORK/delete.out" >"$WORK/delete.counts"
	# An id curl never reported (it stopped early) is a failure too.
	awk 'NR == FNR { id = $2; sub(/.*\//, "", id); seen[id] = 1; next } !($1 in seen)' \
		"$WORK/delete.out" "$1" >>"$1.failed"
	sort -u "$1.failed" >"$WORK/failed.sorted" && cat "$WORK/failed.sorted" >"$1.failed"
	set -- $(cat "$WORK/delete.counts") "$(wc -l <"$1.failed")"
	echo "$1 $2 $4"
}

# remember_ids FILE: appends "id username password" lines to the state file
# (mode 600: it holds the throwaway test user's password).
remember_ids() {
	[ -s "$1" ] || return 0
	sf=$(state_file)
	(
		umask 077
		awk -v u="$USERNAME" -v p="$PASSWORD" '{ print $1, u, p }' "$1" >>"$sf"
	) || log "cannot write $sf"
}

# forget_ids FILE: removes FILE's ids of this user from the state file.
forget_ids() {
	sf=$(state_file)
	[ -f "$sf" ] && [ -f "$1" ] || return 0
	awk -v u="$USERNAME" 'NR == FNR { drop[$1] = 1; next } !($2 == u && ($1 in drop))' "$1" "$sf" >"$WORK/state.new" &&
		cat "$WORK/state.new" >"$sf"
}

cleanup_run() {
	cat "$WORK/setup_ids" "$WORK/created" 2>/dev/null | sort -u >"$WORK/mine"
	sort -u "$WORK/deleted" 2>/dev/null >"$WORK/deleted.sorted"
	comm -23 "$WORK/mine" "$WORK/deleted.sorted" >"$WORK/todo"
	echo
	echo "Cleanup: $(wc -l <"$WORK/mine") posts created by this run, $(wc -l <"$WORK/deleted.sorted") deleted during the load, deleting $(wc -l <"$WORK/todo") by id"
	login "$USERNAME" "$PASSWORD" || log "cleanup: log in again failed; trying the old token"
	set -- $(delete_ids "$WORK/todo")
	echo "cleanup: deleted=$1 already_gone=$2 failed=$3"
	CLEANUP_FAILED=$3
	comm -23 "$WORK/mine" "$WORK/todo.failed" >"$WORK/gone"
	forget_ids "$WORK/gone"
	[ -s "$(state_file)" ] || rm -f "$(state_file)"
	[ "$3" = 0 ] || echo "cleanup: $3 posts could not be deleted; their ids stay in $(state_file) for --cleanup"
}

# cleanup_only: --cleanup: deletes every post recorded by earlier runs
# against this URL, logging in as the user that created each.
cleanup_only() {
	sf=$(state_file)
	if [ ! -s "$sf" ]; then
		echo "cleanup: nothing recorded in $sf; nothing to delete"
		exit 0
	fi
	check_reachable
	total_d=0 total_g=0 total_f=0 total_x=0
	awk '{ print $2, $3 }' "$sf" | sort -u >"$WORK/users"
	while read -r USERNAME PASSWORD; do
		awk -v u="$USERNAME" '$2 == u { print $1 }' "$sf" | sort -u >"$WORK/todo"
		if ! login "$USERNAME" "$PASSWORD"; then
			# The same URL may now serve another deployment (compose down -v,
			# then make run, say): if the user does not exist there, its ids
			# name nothing of this deployment, and nothing is left to delete.
			if [ "$(api GET "/api/users/by-username/$USERNAME")" = 404 ]; then
				echo "cleanup: user $USERNAME does not exist at $URL (another deployment now answers there); dropping its $(wc -l <"$WORK/todo") ids"
				forget_ids "$WORK/todo"
				total_x=$((total_x + $(wc -l <"$WORK/todo")))
				continue
			fi
			log "cleanup: cannot log in as $USERNAME (password changed or login refused); keeping its $(wc -l <"$WORK/todo") ids"
			total_f=$((total_f + $(wc -l <"$WORK/todo")))
			continue
		fi
		set -- $(delete_ids "$WORK/todo")
		total_d=$((total_d + $1)) total_g=$((total_g + $2)) total_f=$((total_f + $3))
		comm -23 "$WORK/todo" "$WORK/todo.failed" >"$WORK/gone"
		forget_ids "$WORK/gone"
	done <"$WORK/users"
	echo "cleanup: deleted=$total_d already_gone=$total_g failed=$total_f"
	[ $total_x = 0 ] || echo "cleanup: dropped=$total_x ids of users this deployment does not have"
	[ -s "$sf" ] || rm -f "$sf"
	[ $total_f = 0 ] || exit 1
	exit 0
}

# --- main ----------------------------------------------------------------------

on_signal() {
	# Stop launching; the loop notices at its next step.
	STOP=1
}

load_main() {
	parse_args "$@"
	umask 077
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/titanium-load.XXXXXX") || die "cannot create a temp dir"
	trap 'rm -rf "$WORK"' EXIT
	trap on_signal INT TERM
	RES=$WORK/results
	touch "$WORK/created" "$WORK/deleted" "$WORK/setup_ids"
	[ $CLEANUP_ONLY = 0 ] || cleanup_only

	check_reachable
	RUN=$(date +%s)-$$
	setup_user
	i=1
	while [ $i -le $SEED_POSTS ]; do
		id=$(create_post "seed-$RUN-$i") || exit 2
		eval "SEED_$i=\$id"
		i=$((i + 1))
	done
	NSEEDS=$SEED_POSTS
	remember_ids "$WORK/setup_ids"
	log "created $SEED_POSTS seed posts: $(tr '\n' ' ' <"$WORK/setup_ids")"
	# Deletes in the first seconds need posts of this run to delete before
	# the first creates are back: a small pool, deleted first.
	if [ "$RATE_DELETE" -gt 0 ]; then
		i=1
		while [ $i -le $((RATE_DELETE * 2)) ] && [ $i -le 50 ]; do
			create_post "pool-$RUN-$i" >>"$WORK/created" || exit 2
			i=$((i + 1))
		done
		: >"$WORK/setup_ids.pool"
		cp "$WORK/created" "$WORK/setup_ids.pool"
		remember_ids "$WORK/setup_ids.pool"
	fi
	[ $STOP = 0 ] && run_load
	# Ids created during the load go to the state file now (the pool's are there).
	if [ "$RATE_DELETE" -gt 0 ]; then
		awk 'NR == FNR { skip[$1] = 1; next } !($1 in skip)' "$WORK/setup_ids.pool" "$WORK/created" >"$WORK/created.new"
	else
		cp "$WORK/created" "$WORK/created.new"
	fi
	remember_ids "$WORK/created.new"
	[ -s "$WORK/deleted" ] && forget_ids "$WORK/deleted"

	summary
	show_stats
	rc=0
	CLEANUP_FAILED=0
	if [ "${PLUS:-0}" = 1 ]; then
		cleanup_run
		[ "$CLEANUP_FAILED" = 0 ] || rc=1
	fi
	if [ $STOP = 1 ]; then
		echo "interrupted: the summary above is partial"
		exit 130
	fi
	if awk -v f="$FAILED_PCT" -v l="$FAIL_LIMIT" 'BEGIN { exit !(f >= l) }'; then
		echo "FAIL: failure rate ${FAILED_PCT}% >= ${FAIL_LIMIT}%"
		exit 1
	fi
	[ $rc = 0 ] && echo "OK: failure rate ${FAILED_PCT}% < ${FAIL_LIMIT}%"
	exit $rc
}
