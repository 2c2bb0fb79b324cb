#!/usr/bin/env bash
# Installs nginx from Debian if needed and runs it on 127.0.0.1 as a reference server for `bench`.
#
#   bench/nginx/nginx.sh start [--port 8088] [--workers 1] [--root DIR] [--no-open-file-cache]
#   bench/nginx/nginx.sh stop  [--port 8088]
#   bench/nginx/nginx.sh conf  [same options as start]   # only write the configuration (for bench)
#
# Then: cargo run -p bench --release -- compare --target nginx=http://127.0.0.1:8088/
# nginx runs as its documentation recommends for static files: access log off (the steps run with
# --quiet), `sendfile` and `tcp_nopush` on, an `open_file_cache` of descriptors and sizes revalidated
# every few seconds, keep-alive on, and the given number of worker processes (1 or 2 on this 2-core
# machine), entirely from a private prefix directory under $TMPDIR (default /tmp), so it never touches
# the system's nginx configuration; `stop` removes it. --no-open-file-cache leaves the cache out (to see what it is worth).
set -euo pipefail

action="${1:-}"
shift || true
port=8088
workers=1
root="$(cd "$(dirname "$0")/../.." && pwd)/www"
open_file_cache=1
while [ $# -gt 0 ]; do
    case "$1" in
        --port) port="$2"; shift 2 ;;
        --workers) workers="$2"; shift 2 ;;
        --root) root="$2"; shift 2 ;;
        --no-open-file-cache) open_file_cache=0; shift ;;
        *) echo "nginx.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
prefix="${TMPDIR:-/tmp}/bench-nginx-$port"

find_nginx() {
    command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true
}

install_nginx() {
    if [ -n "$(find_nginx)" ]; then
        return
    fi
    echo "nginx.sh: installing nginx from Debian" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq nginx-light >&2 || apt-get install -y -qq nginx >&2
}

# Writes $prefix/nginx.conf.
# ANCHOR: nginx_conf
write_conf() {
    root="$(cd "$root" && pwd)"
    mkdir -p "$prefix/logs" "$prefix/tmp"
    # https://nginx.org/en/docs/http/ngx_http_core_module.html#open_file_cache: keep descriptors, sizes
    # and lookup errors of recently used files, and check them against the disk every 30 s (the values
    # of that page's example, with room for more files).
    local cache="open_file_cache off;"
    if [ "$open_file_cache" = 1 ]; then
        cache="open_file_cache max=10000 inactive=20s;
    open_file_cache_valid 30s;
    open_file_cache_min_uses 2;
    open_file_cache_errors on;"
    fi
    cat >"$prefix/nginx.conf" <<CONF
worker_processes $workers;
pid $prefix/nginx.pid;
error_log $prefix/logs/error.log warn;
events { worker_connections 16384; }
worker_rlimit_nofile 20000;
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    $cache
    keepalive_timeout 65;
    keepalive_requests 1000000;
    client_body_temp_path $prefix/tmp;
    proxy_temp_path $prefix/tmp;
    fastcgi_temp_path $prefix/tmp;
    uwsgi_temp_path $prefix/tmp;
    scgi_temp_path $prefix/tmp;
    types { text/html html; application/octet-stream bin; }
    server {
        listen 127.0.0.1:$port reuseport backlog=4096;
        root $root;
    }
}
CONF
# ANCHOR_END: nginx_conf
}

start() {
    install_nginx
    local nginx
    nginx="$(find_nginx)"
    write_conf
    stop_quietly
    "$nginx" -p "$prefix" -c "$prefix/nginx.conf"
    for _ in $(seq 50); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "http://127.0.0.1:$port/"
            return
        fi
        sleep 0.1
    done
    echo "nginx.sh: nginx did not start on port $port (see $prefix/logs/error.log)" >&2
    exit 1
}

stop_quietly() {
    if [ -f "$prefix/nginx.pid" ]; then
        kill -QUIT "$(cat "$prefix/nginx.pid")" 2>/dev/null || true
        for _ in $(seq 50); do
            [ -f "$prefix/nginx.pid" ] || break
            sleep 0.1
        done
    fi
}

case "$action" in
    start) start ;;
    # For a harness that runs nginx itself, in the foreground (`-g 'daemon off;'`): installs nginx if
    # needed, writes the configuration, and prints the binary and the prefix directory.
    conf) install_nginx; write_conf; echo "$(find_nginx) $prefix" ;;
    stop) stop_quietly; rm -rf "$prefix" ;;
    *) echo "usage: $0 start|stop|conf [--port N] [--workers N] [--root DIR] [--no-open-file-cache]" >&2; exit 2 ;;
esac
