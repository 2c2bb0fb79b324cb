#!/usr/bin/env bash
# The reference run: the measurements the book and the README include, written under
# book/src/results/. Run it on a quiet machine (nothing else building or serving); it takes about
# 35 minutes on 2 cores. Each figure is the median of interleaved rounds (three; nine for c10k),
# with its min–max.
#
#   bash bench/reference-run.sh            # everything
#   bash bench/reference-run.sh nginx      # one part: nginx | c10k | compare | wrk | log
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --workspace
bench=target/release/bench
results=book/src/results
parts=("${@:-nginx c10k compare wrk log}")

# Step 7 against nginx tuned as its documentation says for static files (bench/nginx/nginx.sh):
# the small page and a 1 MiB file with keep-alive, and a connection per request; one loop against
# one worker, one loop per core against one worker per core; and one loop whose open-file cache
# checks each hit by `stat` instead of inotify, to show what the watch saves.
nginx() {
    "$bench" compare --only step07-1 --only step07-1-stat --only step07-per-core --nginx 1 --nginx 2 \
        --scenario keep-alive-c64-small --scenario keep-alive-c16-1mib --scenario close-c64-small \
        --repeat 3 -d 5s --out "$results/nginx"
}

# 10,000 keep-alive connections to step 7 and to nginx, each round recording the machine's TCP
# counters (SYN retransmits, accept-queue overflows).
c10k() {
    "$bench" c10k --connections 10000 --step step07-1 --step step07-per-core --nginx 1 --nginx 2 \
        --repeat 9 --out "$results/c10k-nginx"
}

# Every model under the whole scenario matrix: short runs, three rounds.
compare() {
    "$bench" compare --repeat 3 -d 1s --warmup 250ms --out "$results/compare"
}

# The load generator against wrk on the same nginx (one worker): rate and client CPU per request.
wrk_vs_bench() {
    if ! command -v wrk >/dev/null; then
        echo "reference-run.sh: installing wrk from Debian" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >&2 ||
            { echo "reference-run.sh: wrk is missing and could not be installed" >&2; return 1; }
    fi
    bash bench/nginx/nginx.sh start --port 8088 --workers 1 >/dev/null
    trap 'bash bench/nginx/nginx.sh stop --port 8088 >/dev/null' RETURN
    local url=http://127.0.0.1:8088/index.html
    for round in 1 2 3; do
        echo "round $round: bench"
        "$bench" load -c 64 -t 1 -d 5s "$url"
        echo "round $round: wrk"
        /usr/bin/time -f "wrk client CPU: %U s user, %S s system" wrk -t 1 -c 64 -d 5s "$url" 2>&1 |
            grep -E "Requests/sec|requests in|client CPU"
    done
}

# What the access log costs step 7 per request: --quiet, stdout to /dev/null, to a file, to a pipe
# that is read. Server CPU per request is utime + stime from /proc/PID/stat over the run.
log_cost() {
    local port=7181 tick
    tick=$(getconf CLK_TCK)
    for round in 1 2 3; do
        for mode in quiet devnull file pipe; do
            local flags=() sink=/dev/null
            case "$mode" in
                quiet) flags=(--quiet) ;;
                file) sink="$(mktemp)" ;;
            esac
            if [ "$mode" = pipe ]; then
                target/release/step07-epoll --addr "127.0.0.1:$port" | cat >/dev/null &
                sleep 0.5
                pid=$(pgrep -n -f "step07-epoll --addr 127.0.0.1:$port")
            else
                target/release/step07-epoll --addr "127.0.0.1:$port" "${flags[@]}" >"$sink" &
                pid=$!
                sleep 0.5
            fi
            local before after requests
            before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
            requests=$("$bench" load -c 64 -t 1 -d 5s --json "http://127.0.0.1:$port/index.html" |
                python3 -c 'import json, sys; print(json.load(sys.stdin)["requests"])')
            after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
            kill "$pid"
            wait 2>/dev/null || true
            [ "$sink" != /dev/null ] && rm -f "$sink"
            python3 -c "print('round $round, $mode: %d requests, %.1f µs server CPU per request' % ($requests, ($after - $before) / $tick * 1e6 / $requests))"
        done
    done
}

for part in ${parts[*]}; do
    case "$part" in
        nginx) nginx ;;
        c10k) c10k ;;
        compare) compare ;;
        wrk) wrk_vs_bench ;;
        log) log_cost ;;
        *) echo "reference-run.sh: unknown part $part (nginx, c10k, compare, wrk, log)" >&2; exit 2 ;;
    esac
done
