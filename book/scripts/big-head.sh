#!/usr/bin/env bash
# Sends one GET with a head of about 5 KB (60 headers of 79 characters, the size of a browser request
# that carries many cookies) to 127.0.0.1:PORT, and prints the answer's status line, or curl's error.
# Step 1 uses it to show the reset a server causes when it closes with part of the head unread.
#
#   book/scripts/big-head.sh 7080
set -euo pipefail
port=${1:-7080}
headers=()
for i in $(seq -w 1 60); do
    headers+=(-H "X-Filler-$i: $(printf 'v%.0s' $(seq 1 66))")
done
curl -sS -o /dev/null -w '%{http_code}\n' "${headers[@]}" "http://127.0.0.1:$port/" || true
