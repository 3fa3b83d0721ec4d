#!/usr/bin/env bash
# ctest wrapper for the test programs: run_test.sh SECONDS PROGRAM [ARGS...]
#
# Runs PROGRAM with ARGS.  If it is still running after SECONDS (set a
# little below the ctest TIMEOUT), prints every thread's backtrace of it
# and of its child processes (gdb, when installed), then kills it, so that
# a hang in CI leaves evidence in the log instead of only "Timeout".
# Otherwise exits with the program's own status.
set -u

limit=$1
shift

"$@" &
pid=$!

watch() {
    local waited=0
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$waited" -ge "$limit" ]; then
            echo "run_test.sh: $1 still running after ${limit} s: treating it as hung" >&2
            for p in "$pid" $(pgrep -P "$pid" 2>/dev/null); do
                if command -v gdb >/dev/null 2>&1; then
                    echo "run_test.sh: backtraces of pid $p:" >&2
                    gdb -p "$p" -batch -nx -ex 'set pagination off' \
                        -ex 'info threads' -ex 'thread apply all bt 30' 2>&1 |
                        grep -vE '^\[(New LWP|Thread debugging|Inferior)' >&2
                else
                    echo "run_test.sh: gdb not installed, no backtraces for pid $p" >&2
                fi
            done
            kill -KILL $(pgrep -P "$pid" 2>/dev/null) "$pid" 2>/dev/null
            return
        fi
        sleep 1 </dev/null >/dev/null 2>&1 # holds no pipe of ctest
        waited=$((waited + 1))
    done
}

watch "$1" &
watcher=$!

wait "$pid"
rc=$?
kill "$watcher" 2>/dev/null
wait "$watcher" 2>/dev/null
exit "$rc"
