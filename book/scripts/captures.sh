#!/usr/bin/env bash
# Reruns the console captures of the first chapters (introduction, HTTP on one page, steps 1–4, the
# HTTP core in depth) and writes them to book/src/captures/, where the chapters include them from.
#
#   cargo build --release --workspace --bins --examples
#   book/scripts/captures.sh [intro|http|step01|step02|core|step03|step04 …]    (default: all)
#
# Run it from the root of a clone. The servers listen on 127.0.0.1:7080 as the chapters show, so
# nothing else may use that port; `unshare -n` gives the script a loopback of its own, with
# `sudo unshare -n sh -c 'ip link set lo up && book/scripts/captures.sh'`. It needs curl, nc, ss,
# strace, tcpdump and chromium, and root for tcpdump and /proc/PID/stack. The home directory is
# written as `~` in the captures.
set -eu; set -o errtrace; trap 'echo "captures.sh: line $LINENO failed" >&2' ERR   # no pipefail: `| head` ends its writer early, on purpose

unset RUST_BACKTRACE   # what a reader sees by default
out=book/src/captures
release=target/release
mkdir -p "$out"
scratch="${TMPDIR:-/tmp}/progressive-servers-captures"   # the servers' stdout and stderr go here
rm -rf "$scratch"; mkdir -p "$scratch"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$scratch"' EXIT

# Writes stdin to captures/NAME.txt, with the home directory shown as `~`.
save() { sed "s|$HOME|~|g" > "$out/$1.txt"; }

# Prints "$ COMMAND" and then what the command prints, for each command: one console session.
session() {
    local command
    for command in "$@"; do
        printf '$ %s\n' "$command"
        bash -c "$command" 2>&1 || true
    done
}

# Starts a server in the background, its stdout in $scratch/NAME.log, and waits for its first line.
server_pid=
start() {
    local name=$1; shift
    # Only the standard streams, as from a terminal: descriptors the caller happened to hold open
    # would show up in the /proc listings.
    bash -c 'for fd in /proc/$$/fd/*; do n=${fd##*/}; if [ "$n" -gt 2 ] && [ -e "$fd" ]; then eval "exec $n>&-"; fi; done; exec "$@"' \
        server "$@" > "$scratch/$name.log" 2> "$scratch/$name.err" < /dev/null &
    server_pid=$!
    for _ in $(seq 100); do
        grep -q '^Listening on' "$scratch/$name.log" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "$name did not start: $(cat "$scratch/$name.err")" >&2
    return 1
}

# Stops the server started last with SIGTERM (every step exits 0 on it), and waits for it.
stop() {
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
}

# Opens N idle connections with nc (no request, stdin held open), remembered for kill_holders.
holders=()
hold() {
    local i
    for i in $(seq "$1"); do
        sleep 30 | nc 127.0.0.1 7080 > /dev/null &
        holders+=($!)
    done
    sleep 0.3
}
kill_holders() {
    [ ${#holders[@]} -gt 0 ] && kill "${holders[@]}" 2>/dev/null || true
    holders=()
}

# The log of the server started as NAME, without its first line.
log_of() { tail -n +2 "$scratch/$1.log"; }

# Runs SERVER under `strace -f -tt -e trace=CALLS` into $scratch/NAME, sends it one request, and
# stops it with Ctrl-C: one connection's life, from its accept4 to the server's exit.
trace_one_request() {
    local name=$1 calls=$2 server=$3
    strace -f -tt -o "$scratch/$name" -e trace="$calls" "$server" > /dev/null &
    local tracer=$!
    sleep 1
    curl -s -o /dev/null 'http://127.0.0.1:7080/hello%20world.txt'
    sleep 0.5
    kill -INT "$(pgrep -P "$tracer")"
    wait "$tracer" || true
}

chromium_once() {
    chromium --headless --no-sandbox --virtual-time-budget=3000 --dump-dom "$@" 2>/dev/null
}

capture_intro() {
    start intro "$release/step01-hello"
    { curl -s -i http://127.0.0.1:7080/; echo; } | save intro-curl
    stop
    log_of intro | save intro-log
}

capture_http() {
    start http "$release/step02-files"
    curl -sv -o /dev/null http://127.0.0.1:7080/ 2>&1 | save http-curl-v
    printf 'GET / HTTP/1.0\r\n\r\n' | nc -q 2 127.0.0.1 7080 | head -n 9 | save http-nc
    printf 'GET / HTTP/1.0\r\n\r\n' | nc -q 2 127.0.0.1 7080 | od -c | head -n 5 | save http-od
    session \
        "printf 'GET /missing.html HTTP/1.0\\r\\n\\r\\n' | nc -q 2 127.0.0.1 7080" \
        "printf 'DELETE / HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n\\r\\n' | nc -q 2 127.0.0.1 7080" \
        "printf 'GET / HTTP/1.1\\r\\n\\r\\n' | nc -q 2 127.0.0.1 7080" \
        'curl -sI http://127.0.0.1:7080/docs' | save http-errors
    capture_validators http-validators
    stop
    log_of http | save http-log
}

# Revalidation and a resumed download, against the server already running: curl saves the ETag,
# asks again with it, then fetches a large file in two halves, into the current directory, and
# removes what it saved.
capture_validators() {
    local name=$1
    session \
        'curl -s -o page.html --etag-save etag.txt -w "%{http_code} %{size_download} bytes\n" http://127.0.0.1:7080/' \
        'cat etag.txt' \
        'curl -s -o page.html --etag-compare etag.txt -w "%{http_code} %{size_download} bytes\n" http://127.0.0.1:7080/' \
        'curl -s -r 0-999 -o part.html -w "%{http_code} %{size_download} bytes\n" http://127.0.0.1:7080/' \
        'curl -s -C - -o part.html -w "%{http_code} %{size_download} bytes\n" http://127.0.0.1:7080/' \
        'cmp part.html www/index.html && echo identical' \
        'rm page.html etag.txt part.html' \
        | save "$name"
}

capture_step01() {
    if [ -x "$release/examples/first-hello" ]; then
        start first "$release/examples/first-hello"
        head -n 1 "$scratch/first.log" | save step01-first-start
        session 'book/scripts/big-head.sh 7080' | tail -n +2 | save step01-first-break
        stop
    fi

    start hello "$release/step01-hello"
    head -n 1 "$scratch/hello.log" | save step01-start
    curl -sv http://127.0.0.1:7080/ 2>&1 | save step01-curl
    printf 'GET /anything?x=1 HTTP/1.0\r\n\r\n' | nc -q 2 127.0.0.1 7080 | save step01-nc
    local pid=$server_pid
    ps -o pid,nlwp,stat,wchan:22,rss,cmd -p "$pid" | save step01-ps
    top -b -n 1 -p "$pid" | tail -n 2 | save step01-top
    ls -l "/proc/$pid/fd" | save step01-fd
    session "$release/step01-hello; echo \"exit code: \$?\"" | tail -n +2 | save step01-port-in-use

    # The backlog: nc holds the server, two curls wait behind it.
    sleep 30 | nc 127.0.0.1 7080 > /dev/null &
    local holder=$!
    sleep 0.3
    for n in B C; do
        curl -s -o /dev/null -w "client $n: %{http_code} after %{time_total} s\n" http://127.0.0.1:7080/ \
            >> "$scratch/clients" &
    done
    sleep 0.5
    { ss -tlnp 'sport = :7080'; ss -tn '( sport = :7080 or dport = :7080 )'; } | save step01-backlog-ss
    ps -o pid,nlwp,stat,wchan:20,cmd -p "$pid" | save step01-backlog-ps
    { head -n 4 "/proc/$pid/stack"; echo '…'; } | save step01-backlog-stack
    sleep 7
    sort "$scratch/clients" | save step01-backlog-clients
    kill "$holder" 2>/dev/null || true
    stop
    log_of hello | head -n 2 | save step01-log

    start headers "$release/step01-hello" --show-headers
    chromium_once http://127.0.0.1:7080/ > /dev/null
    sleep 0.5
    stop
    { head -n 1 "$scratch/headers.log"; log_of headers; } | save step01-show-headers

    strace -f -o "$scratch/strace" -e trace=network,read,write,close,poll,ppoll \
        "$release/step01-hello" > /dev/null &
    local tracer=$!
    sleep 1
    curl -s -o /dev/null http://127.0.0.1:7080/
    sleep 0.3
    kill -INT "$(pgrep -P "$tracer")"
    wait "$tracer" || true
    { echo '…'; sed -n '/socket(AF_INET/,$p' "$scratch/strace"; } | save step01-strace

    if [ -x "$release/examples/first-hello" ]; then
        tcpdump_pair first 7081 "$release/examples/first-hello" 127.0.0.1:7081
    fi
    tcpdump_pair real 7080 "$release/step01-hello"
}

# One 6 KB head to a server on PORT while tcpdump watches; the packets go to step01-tcpdump-NAME.
tcpdump_pair() {
    local name=$1 port=$2; shift 2
    start "dump-$name" "$@"
    tcpdump -i lo -n -w "$scratch/tcpdump-$name.pcap" "tcp port $port" 2>/dev/null &
    local dumper=$!
    sleep 1
    book/scripts/big-head.sh "$port" > /dev/null
    sleep 2.5
    kill -INT "$dumper"; wait "$dumper" || true
    stop
    tcpdump -r "$scratch/tcpdump-$name.pcap" -n 2>/dev/null | sed 's/, options \[[^]]*\]//' \
        | save "step01-tcpdump-$name"
}

capture_step02() {
    if [ -x "$release/examples/first-files" ]; then
        start first "$release/examples/first-files"
        { head -n 1 "$scratch/first.log"; cat "$scratch/first.err"; } | save step02-first-start
        curl -s --path-as-is http://127.0.0.1:7080/../Cargo.toml | head -n 3 | save step02-first-escape
        nc -z 127.0.0.1 7080
        wait "$server_pid" 2>/dev/null || true
        tail -n +2 "$scratch/first.err" | save step02-first-crash
    fi

    start files "$release/step02-files"
    head -n 1 "$scratch/files.log" | save step02-start
    chromium_once http://127.0.0.1:7080/ | sed -n '/<ul id="checks">/,/<\/ul>/p' | save step02-chromium
    sleep 0.5
    log_of files | save step02-chromium-log
    local before
    before=$(wc -l < "$scratch/files.log")
    session \
        "printf 'GET /../../etc/passwd HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n' | nc -q 2 127.0.0.1 7080 | head -n 1" \
        "printf 'GET /%%2e%%2e/%%2e%%2e/etc/passwd HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n' | nc -q 2 127.0.0.1 7080 | head -n 1" \
        "curl -s --path-as-is -o /dev/null -w '%{http_code}\\n' 'http://127.0.0.1:7080/%252e%252e/secret.txt'" \
        | save step02-traversal
    tail -n +$((before + 1)) "$scratch/files.log" | save step02-traversal-log
    capture_validators step02-validators
    ls -l "/proc/$server_pid/fd" | save step02-fd

    sleep 30 | nc 127.0.0.1 7080 > /dev/null &
    local holder=$!
    sleep 0.3
    session "curl -s -o /dev/null -w '%{http_code} after %{time_total} s\\n' http://127.0.0.1:7080/" \
        | save step02-wait
    kill "$holder" 2>/dev/null || true
    stop
}

capture_core() {
    start core "$release/step02-files"
    session \
        "printf 'GET / HTTP/1.1\\r\\nHost: x\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\n' | nc -q 2 127.0.0.1 7080 | head -n 1" \
        "printf 'GET / HTTP/2.0\\r\\nHost: x\\r\\n\\r\\n' | nc -q 2 127.0.0.1 7080 | head -n 1" \
        | save http-core-refusals
    printf 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 44\r\n\r\nGET /hello%%20world.txt HTTP/1.1\r\nHost: x\r\n\r\n' \
        | nc -q 2 127.0.0.1 7080 | save http-core-smuggle
    sleep 0.3
    log_of core | save http-core-smuggle-log
    local start_time
    start_time=$(date +%s.%N)
    (printf 'GET / HTTP/1.1\r\nHost: x\r\n'; for i in $(seq 1 10); do printf 'X'; sleep 1; done) | nc 127.0.0.1 7080 \
        | { head -n 1; echo "after $(echo "$(date +%s.%N) - $start_time" | bc) s"; cat > /dev/null; } \
        | save http-core-slowloris
    stop
}

capture_step03() {
    if [ -x "$release/examples/first-process" ]; then
        start first "$release/examples/first-process"
        head -n 1 "$scratch/first.log" | save step03-first-start
        export PID=$server_pid
        session \
            'for i in 1 2 3; do curl -s -o /dev/null http://127.0.0.1:7080/; done' \
            'ps -o pid,ppid,stat,cmd --ppid $PID' \
            | save step03-first-zombies
        stop
    fi

    start process "$release/step03-process"
    chromium_once http://127.0.0.1:7080/ > /dev/null
    sleep 0.5
    log_of process | save step03-chromium-log
    local pid=$server_pid
    hold 3
    sleep 0.5
    ps -o pid,ppid,stat,rss,wchan:16,cmd --forest --pid "$pid" --ppid "$pid" | save step03-forest
    local child
    child=$(pgrep -n -P "$pid")
    paste <(ls -lv "/proc/$pid/fd" | awk 'NR>1 {print $9, $10, $11}') \
          <(ls -lv "/proc/$child/fd" | awk 'NR>1 {print $9, $10, $11}') | save step03-inherit
    grep -E 'Threads|SigCgt' "/proc/$pid/status" "/proc/$child/status" | save step03-sigcgt
    kill_holders
    stop

    # A connection's life under strace -f.
    trace_one_request strace3 accept4,poll,clone,close,rt_sigprocmask,rt_sigaction,recvfrom,sendto,read,write,wait4,exit_group,openat2,statx \
        "$release/step03-process"
    { echo '…'; sed -n '/accept4(.*= [0-9]/,$p' "$scratch/strace3" | sed -n '1,/wait4(-1.*ECHILD/p' \
        | cut -c1-200; echo '…'; } | save step03-strace

    # Ctrl-C with three idle clients: SIGINT to the whole process group, strace on the parent.
    setsid "$release/step03-process" > /dev/null 2>&1 &
    local parent=$!
    sleep 0.5
    hold 3
    sleep 0.5
    strace -tt -o "$scratch/strace-ctrl-c" -e trace=kill,wait4,exit_group -p "$parent" &
    tracer=$!
    sleep 0.5
    kill -INT -- "-$parent"
    wait "$tracer" || true
    kill_holders
    grep -v 'resumed\|detached' "$scratch/strace-ctrl-c" | save step03-ctrl-c

    # Prefork: four workers in accept, one killed and replaced, and who wakes per connection.
    start prefork "$release/step03-process" --prefork 4
    local pid=$server_pid
    sleep 1.5   # a worker younger than a second is replaced only after a pause (supervisor.rs)
    ps -o pid,ppid,stat,rss,wchan:16,cmd --forest --pid "$pid" --ppid "$pid" | save step03-prefork-ps
    ss -tlnp 'sport = :7080' | save step03-prefork-ss
    local victim
    victim=$(pgrep -P "$pid" | head -n 1)
    session "kill -KILL $victim" | save step03-prefork-kill
    sleep 0.5
    ps -o pid,ppid,stat,rss,wchan:16,cmd --forest --pid "$pid" --ppid "$pid" | save step03-prefork-ps-after
    stop
    grep -h 'killed by' "$scratch/prefork.err" | save step03-prefork-replaced

    start herd "$release/step03-process" --prefork 4
    sleep 0.5
    local workers
    workers=$(pgrep -P "$server_pid" | sed 's/^/-p /' | tr '\n' ' ')
    # shellcheck disable=SC2086
    strace -e trace=accept4 -o "$scratch/herd" $workers &
    tracer=$!
    sleep 0.5
    for i in $(seq 6); do curl -s -o /dev/null http://127.0.0.1:7080/; sleep 0.1; done
    sleep 0.3
    kill -INT "$tracer"; wait "$tracer" || true
    stop
    { echo "\$ strace -e trace=accept4 $workers"; cat "$scratch/herd"; } | grep -v 'detached\|+++\|---' | save step03-herd
}

capture_step04() {
    if [ -x "$release/examples/first-thread" ]; then
        start first "$release/examples/first-thread"
        export PID=$server_pid
        head -n 1 "$scratch/first.log" | save step04-first-start
        session \
            'for i in $(seq 20); do sleep 5 | nc -q 0 127.0.0.1 7080 > /dev/null 2>&1 & done; sleep 1' \
            'grep Threads /proc/$PID/status' \
            | save step04-first-break
        kill $(pgrep -P 1 -x nc | while read -r nc_pid; do
            [ "$(readlink "/proc/$nc_pid/ns/net")" = "$(readlink /proc/self/ns/net)" ] && echo "$nc_pid"
        done) 2>/dev/null || true
        stop
    fi

    start pool "$release/step04-thread" --pool 4
    head -n 1 "$scratch/pool.log" | save step04-start
    chromium_once http://127.0.0.1:7080/ > /dev/null
    sleep 0.5
    log_of pool | save step04-chromium-log
    stop

    start spawn "$release/step04-thread"
    local pid=$server_pid
    hold 3
    sleep 0.3
    curl -s -o /dev/null http://127.0.0.1:7080/
    sleep 0.3
    ps -L -o pid,tid,stat,wchan:16,comm -p "$pid" | save step04-ps-threads
    grep -E 'Threads|VmRSS' "/proc/$pid/status" | save step04-status
    ls -lv "/proc/$pid/fd" | awk 'NR>1 {print $9,$10,$11}' | save step04-fd
    kill_holders
    stop
    start top "$release/step04-thread" --pool 4
    top -H -b -n1 -p "$server_pid" | tail -n 6 | save step04-top
    stop

    start pool2 "$release/step04-thread" --pool 2
    hold 2
    curl -s -o /dev/null -w '%{http_code} after %{time_total} s\n' http://127.0.0.1:7080/ > "$scratch/pool-curl" &
    local waiting=$!
    sleep 0.5
    { ss -tn '( sport = :7080 )'; ss -tln 'sport = :7080'; } | save step04-pool-ss
    wait "$waiting"
    save step04-pool-curl < "$scratch/pool-curl"
    kill_holders
    stop

    SERVER="$release/step04-thread" book/scripts/ctrl-c-download.sh | save step04-ctrl-c-download

    # stdout a pipe that nobody reads, and load: what happens to the threads that log.
    "$release/step04-thread" > >(sleep 30) 2>/dev/null &
    local stalled=$!
    sleep 0.5
    wrk -t1 -c8 -d3s http://127.0.0.1:7080/ > "$scratch/wrk" 2>&1 || true
    {
        echo '$ wrk -t1 -c8 -d3s http://127.0.0.1:7080/ | grep -E "requests in|Non-2xx|Socket errors"'
        grep -E 'requests in|Non-2xx|Socket errors' "$scratch/wrk"
        echo '$ grep Threads /proc/$PID/status'
        grep Threads "/proc/$stalled/status"
        echo '$ ps -L -o tid,stat,wchan:16,comm -p $PID | head -4'
        ps -L -o tid,stat,wchan:16,comm -p "$stalled" | head -4
    } | save step04-stalled-stdout
    kill -KILL "$stalled" 2>/dev/null || true

    # What a thread costs: one request, under strace -f.
    trace_one_request strace4 accept4,fcntl,mmap,munmap,mprotect,clone3,prctl,rseq,set_robust_list,sigaltstack,recvfrom,sendto,close,exit \
        "$release/step04-thread"
    sed -n '/accept4(.*= [0-9]/,/exited with 0/p' "$scratch/strace4" | cut -c1-220 | save step04-strace

    # Ctrl-C with one idle connection, strace -f attached to the running server.
    start ctrl "$release/step04-thread"
    local pid=$server_pid
    sleep 30 | nc 127.0.0.1 7080 > /dev/null &
    sleep 0.5
    strace -f -tt -o "$scratch/strace4c" -e trace=recvfrom,shutdown,close,exit,exit_group -p "$pid" &
    tracer=$!
    sleep 0.5
    kill -INT "$pid"
    wait "$tracer" || true
    wait "$pid" 2>/dev/null || true
    kill_holders
    grep -v 'detached' "$scratch/strace4c" | save step04-ctrl-c-strace
}

chapters=("$@")
[ ${#chapters[@]} -eq 0 ] && chapters=(intro http step01 step02 core step03 step04)
for chapter in "${chapters[@]}"; do
    echo "capturing $chapter" >&2
    "capture_$chapter"
done
