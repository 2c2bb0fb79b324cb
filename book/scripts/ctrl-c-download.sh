#!/usr/bin/env bash
# Step 4's "Ctrl-C during a download": a slow client downloads a 20 MiB file, the server gets SIGINT
# half a second in, and the script prints when each thing happened and whether the file arrived whole.
#
#   [PORT=7080] book/scripts/ctrl-c-download.sh [SERVER ARGS…]   (from the repository root, after
#                                                   cargo build --release -p step04-thread)
#
# The file lives in a temporary document root; curl reads at 10 MB/s, so the download takes about
# two seconds and the signal arrives in the middle of it. The server listens on 127.0.0.1:$PORT, port
# 7080 unless PORT says otherwise, and curl downloads from the same port.
set -euo pipefail
server=${SERVER:-target/release/step04-thread}
port=${PORT:-7080}
root=$(mktemp -d)
server_pid=; curl_pid=
# Whatever happens, leave no server or curl behind, and no temporary root.
trap 'kill $server_pid $curl_pid 2>/dev/null || true; rm -rf "$root"' EXIT
head -c $((20 * 1024 * 1024)) /dev/urandom > "$root/big.bin"
now() { date +%T.%N | cut -c1-12; }

"$server" --addr "127.0.0.1:$port" --root "$root" --quiet "$@" > /dev/null &
server_pid=$!
sleep 0.5   # until it listens
echo "download starts at $(now)"
curl -s --limit-rate 10M -o "$root/copy" -w "curl: %{http_code}, %{size_download} bytes, done at " \
    "http://127.0.0.1:$port/big.bin" && now &
curl_pid=$!
sleep 0.5
echo "SIGINT at $(now)"
kill -INT "$server_pid"
status=0; wait "$server_pid" || status=$?
echo "server exit code $status at $(now)"
wait "$curl_pid"
cmp -s "$root/copy" "$root/big.bin" && echo "the copy is identical" || echo "the copy differs"
