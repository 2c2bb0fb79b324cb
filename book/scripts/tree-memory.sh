#!/usr/bin/env bash
# Sums the memory of a process and its children, as step 3's and step 4's figures report it:
# processes, threads, Σ VmRSS, Σ Pss and Σ VmPTE, in KiB.
#
#   book/scripts/tree-memory.sh PID        (a process with or without children)
#
# VmRSS counts pages shared copy-on-write once per process; Pss divides each shared page among the
# processes that map it, so its sum is what the tree really uses; VmPTE is the page tables.
# Reading another user's smaps_rollup needs the same user or root.
set -euo pipefail
parent=${1:?usage: tree-memory.sh PID}
if [ ! -d "/proc/$parent" ]; then
    echo "tree-memory.sh: no process $parent" >&2
    exit 1
fi
# A process without children is a tree of one: pgrep then finds nothing and exits 1.
children=$(pgrep -P "$parent" || true)
pids=""
for pid in $parent $children; do
    # A child that exits meanwhile is not counted.
    if [ -r "/proc/$pid/status" ]; then pids="$pids $pid"; fi
done
awk_sum() { awk -v key="$1" '$1 == key":" { sum += $2 } END { print sum + 0 }'; }
processes=0; threads=0
for pid in $pids; do
    processes=$((processes + 1))
    threads=$((threads + $(awk '$1 == "Threads:" { print $2 }' "/proc/$pid/status")))
done
rss=$(for pid in $pids; do cat "/proc/$pid/status"; done | awk_sum VmRSS)
pte=$(for pid in $pids; do cat "/proc/$pid/status"; done | awk_sum VmPTE)
pss=$(for pid in $pids; do cat "/proc/$pid/smaps_rollup"; done | awk_sum Pss)
echo "processes=$processes threads=$threads VmRSS=${rss}KiB Pss=${pss}KiB VmPTE=${pte}KiB"
