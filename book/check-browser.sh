#!/usr/bin/env bash
# Opens every page of the built book in headless Chromium and fails if any image on it did not load.
#
#   mdbook build book && bash book/check-browser.sh [BUILT_BOOK_DIR]
#
# BUILT_BOOK_DIR defaults to book/book beside this script. The pages are served over HTTP from 127.0.0.1
# on a free port (file:// would hide mistakes a real server shows, such as a path's case or a missing
# file that a browser silently falls back from). book.toml loads js/images-loaded.js on every page; on the
# window's load event it writes data-images-loaded="N/M" on <body>: N images loaded out of M. Chromium's
# --dump-dom prints the DOM after the page loaded, and this script checks N == M on each page.
#
# Under CI=true a missing chromium or python3 is a failure; elsewhere the script says it skipped and
# exits 0. The HTTP server it starts is stopped on every exit path.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
book_dir=${1:-"$script_dir/book"}

# Prints why the check cannot run, then fails under CI or skips elsewhere.
skip_or_fail() {
    if [[ "${CI:-}" == "true" ]]; then
        echo "check-browser: FAILED: $1 (required under CI=true)" >&2
        exit 1
    fi
    echo "check-browser: skipped: $1"
    exit 0
}

browser=""
for candidate in chromium chromium-browser google-chrome; do
    if command -v "$candidate" >/dev/null 2>&1; then
        browser=$candidate
        break
    fi
done
[[ -n "$browser" ]] || skip_or_fail "no chromium on PATH (apt-get install chromium)"
command -v python3 >/dev/null 2>&1 || skip_or_fail "no python3 on PATH"
if [[ ! -f "$book_dir/index.html" ]]; then
    echo "check-browser: FAILED: no built book at $book_dir (run: mdbook build book)" >&2
    exit 1
fi

work_dir=$(mktemp -d)
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work_dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Port 0: the system picks a free port, and the server prints it. -u: print it unbuffered.
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$book_dir" >"$work_dir/server.log" 2>&1 &
server_pid=$!
port=""
for _ in $(seq 1 100); do
    port=$(sed -n 's/^Serving HTTP on 127\.0\.0\.1 port \([0-9][0-9]*\).*/\1/p' "$work_dir/server.log")
    [[ -n "$port" ]] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if [[ -z "$port" ]]; then
    echo "check-browser: FAILED: the HTTP server did not start:" >&2
    cat "$work_dir/server.log" >&2
    exit 1
fi

# Every page a reader can open. Not 404.html (mdBook's error page, served only for missing paths) nor
# toc.html (the sidebar as a frame, used only when JavaScript is off): neither loads book.toml's scripts.
mapfile -t pages < <(cd "$book_dir" && find . -name '*.html' ! -name '404.html' ! -name 'toc.html' | sed 's|^\./||' | sort)

passed=0
failed=0
for page in "${pages[@]}"; do
    dom="$work_dir/dom.html"
    # A fresh profile per page: no cache, no state carried from one page to the next.
    profile=$(mktemp -d "$work_dir/profile.XXXXXX")
    if ! timeout 60 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$profile" --virtual-time-budget=5000 --dump-dom \
        "http://127.0.0.1:$port/$page" >"$dom" 2>"$work_dir/browser.log"; then
        echo "FAIL $page: chromium exited with an error:"
        tail -n 5 "$work_dir/browser.log"
        failed=$((failed + 1))
        continue
    fi
    counts=$(grep -o 'data-images-loaded="[0-9]*/[0-9]*"' "$dom" | head -n 1 | grep -o '[0-9]*/[0-9]*' || true)
    if [[ -z "$counts" ]]; then
        echo "FAIL $page: no data-images-loaded on <body> (js/images-loaded.js missing, or the page never loaded)"
        failed=$((failed + 1))
    elif [[ "${counts%/*}" != "${counts#*/}" ]]; then
        echo "FAIL $page: only $counts images loaded"
        failed=$((failed + 1))
    else
        echo "ok   $page: $counts images loaded"
        passed=$((passed + 1))
    fi
done

if [[ $((passed + failed)) -eq 0 ]]; then
    echo "check-browser: FAILED: no pages found in $book_dir" >&2
    exit 1
fi
echo "check-browser: $passed passed, $failed failed"
[[ "$failed" -eq 0 ]]
