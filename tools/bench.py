#!/usr/bin/env python3
"""Run stillmap's benchmark suite against its peers and summarise it.

    tools/bench.py [--quick] [--runs R] [--libs stillmap,absl,...]
                   [--cases T1,T1L,T2,T3,T4,T5,T6,T7x1,T7x2,T8,
                            T9-1,T9-2,T9-3,T10,T10F,MEM]
                   [--n N] [--timeout S]
                   [--bin PATH] [--out DIR]

Without --libs and --cases it runs everything: every case against every
library compiled into sm_bench (tools/install-peers.sh installs the
peers; a peer missing from the build is skipped with a message).
    tools/bench.py ebr [--runs R] [--bin PATH] [--quick]
    tools/bench.py sweep [--libs ...] [--sizes 0.5,1,2,...]   (millions)
    tools/bench.py plot-t6 [--libs stillmap,absl,tbb] [--n N] [--svg F]

Every (case, lib) runs --runs times (default 3), each in a fresh
sm_bench process; the libraries alternate inside each round and the
order rotates between rounds, so drift on a shared machine hits all of
them alike.  Raw results go to bench/results/<date>.jsonl (one sm_bench
JSON line each, plus the run index), the summary (Markdown, medians and
stillmap's ratio to each peer) to stdout and bench/results/<date>.md.
T5 (churn) also runs T2h (lookup hit at N/2) and T8 (memory) also runs
T8fresh (a fresh map of the 10% T8 keeps), for the comparisons.
T10F (sm_bench --lib floor) is T10's timed loop over a store into a
pre-faulted array: the worst op the machine itself produces.
MEM (sm_bench --lib memref, run once per round, not per library) times
independent and dependent random loads over an array as large as
stillmap's table at N: the physical limit to read T2/T3 against.
T9-1/2/3 are T1/T2/T3 with 15-byte string keys "user:%010llu" (stillmap
with SM_KEY_BYTES, absl::flat_hash_map<std::string, uint64_t>; other
libraries are skipped with a message).

`ebr` runs bench/ebr_vs_urcu --json R times (fresh processes) and prints
the per-row medians across runs.

`plot-t6` runs T6 once per library with --trace (CSV kept in the results
directory) and writes an SVG of the reader's lookup latency over time
around the clear: per time bin the worst and the median lookup, log
scale, clear start and each library's clear end marked.
"""
import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# case id -> (test, threads, latency, n override or None, description)
CASES = {
    "T1": ("T1", 1, False, None, "insert"),
    "T1L": ("T1", 1, True, None, "insert, every op timed"),
    "T2": ("T2", 1, False, None, "lookup hit"),
    "T3": ("T3", 1, False, None, "lookup miss"),
    "T4": ("T4", 1, False, None, "delete all"),
    "T7x1": ("T7", 1, False, None, "mixed 90/5/5, 1 thread"),
    "T7x2": ("T7", 2, False, None, "mixed 90/5/5, 2 threads"),
    "T10": ("T10", 1, True, 10_000_000, "insert 10M, every op timed"),
    "T5": ("T5", 1, False, None, "churn: N/2 live, 5N put+delete (2 ops)"),
    "T2h": ("T2", 1, False, "half", "lookup hit at N/2 (T5's baseline)"),
    "T6": ("T6", 1, False, None, "clear under 1 reader: reader lookups"),
    "T8": ("T8", 1, False, None, "memory: delete 90% (deletes/s)"),
    "T8fresh": ("T8fresh", 1, False, None, "fresh map of T8's 10% (puts/s)"),
    "T10F": ("T10", 1, True, 10_000_000, "T10's timed loop over a store into "
             "a pre-faulted array (sm_bench --lib floor): the machine's own "
             "worst op"),
    "MEM": ("T2", 1, False, None, "memory reference: random loads over an "
            "array the size of stillmap's table at N (sm_bench --lib memref)"),
    "T9-1": ("T9-1", 1, False, None, "string keys user:%010llu: insert"),
    "T9-2": ("T9-2", 1, False, None, "string keys: lookup hit"),
    "T9-3": ("T9-3", 1, False, None, "string keys: lookup miss"),
}
# Libraries sm_bench can be built with (--lib NAME; `sm_bench --list`
# says which this build has).  Those without BA_THREAD_SAFE run behind
# the rwlock wrapper with several threads and are reported "NAME+rwlock".
LIBS = {
    "stillmap": "stillmap",
    "absl": "absl::flat_hash_map<uint64_t, uint64_t> (+rwlock)",
    "urcu": "liburcu cds_lfht",
    "tbb": "tbb::concurrent_hash_map",
    "cuckoo": "libcuckoo cuckoohash_map",
    "stdmap": "std::unordered_map<uint64_t, uint64_t> (+rwlock)",
    "glib": "GLib GHashTable, u64 packed in its pointers (+rwlock)",
    "ck": "Concurrency Kit ck_ht direct mode, writer mutex + ck_epoch",
}
# String-key cases and the libraries sm_bench has a string-key adapter for.
STRING_CASES = {"T9-1", "T9-2", "T9-3"}
STRING_LIBS = {"stillmap", "absl"}
# Cases that run one pseudo-library instead of each of --libs.
SOLO = {"MEM": "memref", "T10F": "floor"}
# A case listed here brings its companion along (the summary compares).
COMPANIONS = {"T5": "T2h", "T8": "T8fresh"}
# The default is the whole suite (about 30 minutes with every peer).
DEFAULT_CASES = ["T1", "T1L", "T2", "T3", "T4", "T5", "T6", "T7x1", "T7x2",
                 "T8", "T9-1", "T9-2", "T9-3", "T10", "T10F", "MEM"]
LAT_CASES = {"T1L", "T10"}


def find_bin(name, given):
    if given:
        return given
    for d in ("build/bench", "build-bench/bench", "build-bench"):
        p = os.path.join(ROOT, d, name)
        if os.access(p, os.X_OK):
            return p
    sys.exit(f"bench.py: {name} not found; build it (see bench/README.md) "
             f"or pass --bin")


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    thp = "?"
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            thp = f.read().strip()
    except OSError:
        pass
    return (f"nproc={os.cpu_count()}, CPU: {model}, kernel "
            f"{platform.release()}, THP: {thp}, load "
            f"{os.getloadavg()[0]:.2f}")


def git_rev():
    try:
        out = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short",
                              "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain",
                                "src", "include"], capture_output=True,
                               text=True).stdout.strip()
        return out.stdout.strip() + ("+dirty src" if dirty else "")
    except OSError:
        return "?"


def libs_in(binary):
    out = subprocess.run([binary, "--list"], capture_output=True, text=True)
    return out.stdout.split(":", 1)[1].split() if ":" in out.stdout else []


def run_one(binary, lib, case, n, timeout):
    test, threads, lat, n_over, _ = CASES[case]
    cmd = [binary, "--lib", lib, "--test", test, "--threads", str(threads)]
    nn = n_over if n_over is not None else n
    if n_over == "half":
        nn = (n or 1_000_000) // 2
    if nn:
        cmd += ["--n", str(nn)]
    if lat and test != "T10":
        cmd.append("--latency")
    try:
        p = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"lib": lib, "case": case, "ok": False,
                "error": f"timeout after {timeout}s", "cmd": cmd}
    rec = None
    for line in p.stdout.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
    if rec is None:
        rec = {"lib": lib, "ok": False,
               "error": f"exit {p.returncode}: {p.stderr.strip()[-300:]}"}
    if p.returncode != 0:
        rec["ok"] = False
        rec.setdefault("error", f"exit {p.returncode}")
    rec["case"] = case
    rec["cmd"] = cmd
    return rec


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt_mops(v):
    return "-" if v is None else f"{v / 1e6:.2f}"


def fmt_us(v):
    if v is None:
        return "-"
    return f"{v / 1e3:.1f}" if v < 1e6 else f"{v / 1e3:,.0f}"


def summarise(results, libs, all_cases, header):
    out = [header, ""]
    cases = [c for c in all_cases if c not in SOLO]
    base = "stillmap" if "stillmap" in libs else libs[0]
    peers = [l for l in libs if l != base]

    def group(case, lib):
        return [r for r in results if r.get("case") == case
                and (r.get("lib") == lib or
                     r.get("lib", "").split("+")[0] == lib)]

    def throughput(metric, title):
        out.extend([title, ""])
        cols = ["case", "what"] + [f"{l}" for l in libs] + \
            [f"{base}/{p}" for p in peers] + ["runs"]
        out.append("| " + " | ".join(cols) + " |")
        out.append("|" + "|".join(["---", "---"] +
                                  ["---:"] * (len(cols) - 2)) + "|")
        for case in cases:
            row = [case, CASES[case][4]]
            m = {}
            runs = []
            for lib in libs:
                g = group(case, lib)
                okg = [r for r in g if r.get("ok")]
                m[lib] = med([r.get(metric) for r in okg])
                label = g[0].get("lib", lib) if g else lib
                cell = fmt_mops(m[lib])
                if len(okg) < len(g):
                    cell += f" ({len(g) - len(okg)} FAILED)"
                if label != lib:
                    cell += f" [{label}]"
                row.append(cell)
                runs.append(str(len(g)))
            for p in peers:
                if m.get(base) and m.get(p):
                    row.append(f"{m[base] / m[p]:.2f}x")
                else:
                    row.append("-")
            row.append("/".join(runs))
            out.append("| " + " | ".join(row) + " |")
        out.append("")

    throughput("ops_per_s", "Throughput, Mops/s of wall time (median); "
               f"ratio >1: {base} faster:")
    throughput("ops_per_cpu_s", "Throughput per CPU second, Mops per "
               "CPU-s of the timed threads (median; steadier than wall time "
               "when other work shares the machine; a thread blocked in a "
               "lock costs no CPU):")

    lat_cases = [c for c in cases if c in LAT_CASES]
    if lat_cases:
        out += ["", "Latency of single inserts (median over runs of each "
                "run's p50 / p99.9 / max), microseconds; ratio = peer max / "
                f"{base} max (>1: {base} better):", ""]
        cols = ["case"] + [f"{l} p50 / p99.9 / max" for l in libs] + \
            [f"max {p}/{base}" for p in peers] + \
            [f"{l} max own (slow ops / waited)" for l in libs]
        out.append("| " + " | ".join(cols) + " |")
        out.append("|" + "|".join(["---"] + ["---:"] * (len(cols) - 1)) + "|")
        for case in lat_cases:
            row = [f"{case} (n={CASES[case][3] or 'N'})"]
            mx = {}
            for lib in libs:
                g = [r for r in group(case, lib) if r.get("ok")]
                p50 = med([r.get("p50_ns") for r in g])
                p999 = med([r.get("p999_ns") for r in g])
                mx[lib] = med([r.get("max_ns") for r in g])
                row.append(f"{fmt_us(p50)} / {fmt_us(p999)} / "
                           f"{fmt_us(mx[lib])}")
            for p in peers:
                if mx.get(base) and mx.get(p):
                    row.append(f"{mx[p] / mx[base]:.2f}x")
                else:
                    row.append("-")
            for lib in libs:
                g = [r for r in group(case, lib) if r.get("ok")]
                mu = med([r.get("max_own_ns") for r in g])
                so = med([r.get("slow_ops") for r in g])
                sp = med([r.get("slow_waited") for r in g])
                row.append(f"{fmt_us(mu)} ({so if so is not None else '-'}"
                           f" / {sp if sp is not None else '-'})")
            out.append("| " + " | ".join(row) + " |")
        out += ["", "slow ops: inserts over 50 us; waited: of those, the "
                "ones during which the thread waited for a CPU (run_delay in "
                "/proc/thread-self/schedstat); max own: the worst insert "
                "less its run-queue wait, roughly what the map itself cost "
                "(median over runs; hypervisor steal is not seen)."]

    out += ["", "Map RSS (rss_bytes - rss_base_bytes, median), MB, right "
            "after the timed loop / one second later:", ""]
    cols = ["case"] + libs
    out.append("| " + " | ".join(cols) + " |")
    out.append("|" + "|".join(["---"] + ["---:"] * len(libs)) + "|")
    for case in cases:
        row = [case]
        for lib in libs:
            g = [r for r in group(case, lib) if r.get("ok")]
            v = med([r["rss_bytes"] - r["rss_base_bytes"] for r in g
                     if "rss_bytes" in r])
            v1 = med([r["rss_1s_bytes"] - r["rss_base_bytes"] for r in g
                      if "rss_1s_bytes" in r])
            cell = "-" if v is None else f"{v / 1e6:.1f}"
            if v1 is not None:
                cell += f" / {v1 / 1e6:.1f}"
            row.append(cell)
        out.append("| " + " | ".join(row) + " |")

    out += special_tables(results, libs, all_cases, group, base, peers)

    fails = [r for r in results if not r.get("ok")]
    if fails:
        out += ["", "FAILED runs:"]
        for r in fails:
            out.append(f"- {r.get('case')} {r.get('lib')}: "
                       f"{r.get('error', '?')}  "
                       f"({' '.join(map(shlex.quote, r.get('cmd', [])))})")
    return "\n".join(out) + "\n"


def special_tables(results, libs, cases, group, base, peers):
    """T5 / T6 / T8: the numbers each of them is about."""
    out = []

    def mfield(case, lib, key, minus_base=False):
        g = [r for r in group(case, lib) if r.get("ok")]
        vals = []
        for r in g:
            v = r.get(key)
            if v is not None and minus_base:
                v = v - r["rss_base_bytes"]
            vals.append(v)
        return med(vals)

    def mb(v):
        return "-" if v is None else f"{v / 1e6:.1f}"

    def us(v):
        return "-" if v is None else (f"{v / 1e3:.2f}" if v < 1e4
                                      else fmt_us(v))

    def ratio(a, b, digits=2):
        return f"{a / b:.{digits}f}x" if a and b else "-"

    if "T5" in cases:
        out += ["", "T5 churn (median): churn Mops/s (put and delete each "
                "count), lookup hit after churn vs T2 on a fresh map of "
                "N/2 (T2h), map RSS MB (above base) after the fill of N/2 / "
                "after churn / after lookups + 1 s:", ""]
        out.append("| lib | churn Mops/s | lookup after churn | T2h fresh "
                   "| after/fresh | RSS filled / churned / 1s |")
        out.append("|---|---:|---:|---:|---:|---:|")
        v = {}
        for lib in libs:
            ch = mfield("T5", lib, "ops_per_s")
            la = mfield("T5", lib, "lookup_after_churn_ops_per_s")
            fr = mfield("T2h", lib, "ops_per_s")
            v[lib] = (ch, la)
            out.append(
                f"| {lib} | {fmt_mops(ch)} | {fmt_mops(la)} | {fmt_mops(fr)}"
                f" | {ratio(la, fr)} | "
                f"{mb(mfield('T5', lib, 'rss_filled_bytes', True))} / "
                f"{mb(mfield('T5', lib, 'rss_churned_bytes', True))} / "
                f"{mb(mfield('T5', lib, 'rss_1s_bytes', True))} |")
        for p in peers:
            out.append(f"\n{base}/{p}: churn {ratio(v[base][0], v[p][0])}, "
                       f"lookup after churn {ratio(v[base][1], v[p][1])} "
                       "(>1: {base} faster)".replace("{base}", base))
    if "T6" in cases:
        out += ["", "T6 clear under one reader (median): the clear call's "
                "wall time; the reader's lookups overlapping [clear start, "
                "clear end + 10 ms]: p50 / p99.9 / max, and max own (the "
                "worst less its run-queue wait), microseconds; map RSS MB "
                "(above base) before clear / right after / 1 s after:", ""]
        out.append("| lib | how | clear us | window p50 / p99.9 / max us "
                   "| max own us | window lookups | RSS before / after / "
                   "1s |")
        out.append("|---|---|---:|---:|---:|---:|---:|")
        v = {}
        for lib in libs:
            g = [r for r in group("T6", lib) if r.get("ok")]
            how = g[0].get("clear_how", "?") if g else "-"
            label = g[0].get("lib", lib) if g else lib
            cl = mfield("T6", lib, "clear_ns")
            mx = mfield("T6", lib, "window_max_ns")
            v[lib] = (cl, mx)
            out.append(
                f"| {label} | {how} | {us(cl)} | "
                f"{us(mfield('T6', lib, 'window_p50_ns'))} / "
                f"{us(mfield('T6', lib, 'window_p999_ns'))} / "
                f"{fmt_us(mx)} | "
                f"{fmt_us(mfield('T6', lib, 'window_max_own_ns'))} | "
                f"{mfield('T6', lib, 'window_lookups')} | "
                f"{mb(mfield('T6', lib, 'rss_before_clear_bytes', True))} / "
                f"{mb(mfield('T6', lib, 'rss_after_clear_bytes', True))} / "
                f"{mb(mfield('T6', lib, 'rss_1s_bytes', True))} |")
        for p in peers:
            out.append(f"\n{p}/{base}: clear time "
                       f"{ratio(v[p][0], v[base][0])}, reader window max "
                       f"{ratio(v[p][1], v[base][1])} (>1: {base} better)")
    if "T10F" in cases:
        g = [r for r in results if r.get("case") == "T10F" and r.get("ok")]
        out += ["", "T10F, the floor (median of "
                f"{len(g)} run(s)): T10's timed loop storing into a "
                "pre-faulted array instead of a map, p50 / p99.9 / max "
                f"{fmt_us(med([r.get('p50_ns') for r in g]))} / "
                f"{fmt_us(med([r.get('p999_ns') for r in g]))} / "
                f"{fmt_us(med([r.get('max_ns') for r in g]))} us, max own "
                f"{fmt_us(med([r.get('max_own_ns') for r in g]))} us: what "
                "this machine adds to the worst of 10M timed operations "
                "whatever the operation does (timer ticks, interrupts, time "
                "taken by the hypervisor)."]
    if "MEM" in cases:
        g = [r for r in results if r.get("case") == "MEM" and r.get("ok")]
        ind = med([r.get("indep_ns_per_load") for r in g])
        dep = med([r.get("dep_ns_per_load") for r in g])
        mbytes = med([r.get("mem_bytes") for r in g])
        out += ["", "MEM memory reference (median of "
                f"{len(g)} run(s); array {mb(mbytes)} MB = stillmap's table "
                "at N): ns per random load, independent (addresses known in "
                "advance, misses overlap) / dependent (pointer chase, one "
                "miss at a time); each library's T2 and T3 as ns per lookup "
                "and as multiples of the independent load:", ""]
        out.append("| what | ns per op | x independent load | "
                   "x dependent load |")
        out.append("|---|---:|---:|---:|")

        def nsrow(name, v):
            if v is None:
                return f"| {name} | - | - | - |"
            return (f"| {name} | {v:.1f} | {ratio(v, ind)} | "
                    f"{ratio(v, dep)} |")
        out.append(nsrow("independent load (memref)", ind))
        out.append(nsrow("dependent load (memref)", dep))
        for case in ("T2", "T3"):
            if case not in cases:
                continue
            for lib in libs:
                ops = mfield(case, lib, "ops_per_s")
                out.append(nsrow(f"{case} {lib}", 1e9 / ops if ops else None))
    if "T8" in cases:
        out += ["", "T8 memory (median), map RSS MB above base: bytes per "
                "entry full; full / after deleting 90% / 0.5 s later / after "
                "the map's own shrink + malloc_trim(0); a fresh map of the "
                "remaining 10% (T8fresh); shrunk / fresh:", ""]
        out.append("| lib | B/entry | full / deleted / 0.5s / shrunk | "
                   "fresh 10% | shrunk/fresh | shrink call | shrink ms |")
        out.append("|---|---:|---:|---:|---:|---|---:|")
        for lib in libs:
            g = [r for r in group("T8", lib) if r.get("ok")]
            how = g[0].get("shrink_how", "?") if g else "-"
            sh = mfield("T8", lib, "rss_shrunk_bytes", True)
            fr = mfield("T8fresh", lib, "rss_fresh_bytes", True)
            sn = mfield("T8", lib, "shrink_ns")
            bpe = mfield("T8", lib, "bytes_per_entry")
            out.append(
                f"| {lib} | {'-' if bpe is None else f'{bpe:.1f}'} | "
                f"{mb(mfield('T8', lib, 'rss_full_bytes', True))} / "
                f"{mb(mfield('T8', lib, 'rss_deleted_bytes', True))} / "
                f"{mb(mfield('T8', lib, 'rss_deleted_500ms_bytes', True))} / "
                f"{mb(sh)} | {mb(fr)} | {ratio(sh, fr)} | {how} | "
                f"{'-' if sn is None else f'{sn / 1e6:.2f}'} |")
    return out


def cmd_suite(args):
    binary = find_bin("sm_bench", args.bin)
    have = libs_in(binary)
    libs = []
    for lib in args.libs.split(","):
        if lib in have:
            libs.append(lib)
        elif lib not in LIBS:
            print(f"bench.py: unknown library {lib} (known: "
                  f"{','.join(LIBS)}); skipped", file=sys.stderr)
        else:
            print(f"bench.py: {lib} not compiled into {binary}; skipped",
                  file=sys.stderr)
    if not libs:
        sys.exit("bench.py: no library to run")
    cases = args.cases.split(",")
    for c, comp in COMPANIONS.items():
        if c in cases and comp not in cases:
            cases.insert(cases.index(c) + 1, comp)
    for c in cases:
        if c not in CASES:
            sys.exit(f"bench.py: unknown case {c}; known: {', '.join(CASES)}")
    runs = 1 if args.quick and not args.runs_given else args.runs
    n = args.n
    if args.quick:
        n = n or 100_000
        CASES["T10"] = ("T10", 1, True, 1_000_000,
                        "insert 1M (quick), every op timed")
    now = datetime.datetime.now(datetime.timezone.utc)
    stamp = now.strftime("%Y-%m-%dT%H%M%SZ")
    outdir = args.out or os.path.join(ROOT, "bench", "results")
    os.makedirs(outdir, exist_ok=True)
    jpath = os.path.join(outdir, stamp + ("-quick" if args.quick else "")
                         + ".jsonl")
    command = " ".join(map(shlex.quote, [os.path.relpath(sys.argv[0], ROOT)]
                           + sys.argv[1:]))
    header = (f"## stillmap benchmark {now.strftime('%Y-%m-%d %H:%M UTC')}\n\n"
              f"- machine: {machine()}\n- repo: {git_rev()}\n"
              f"- command: `{command}` (binary {os.path.relpath(binary, ROOT)})"
              f"\n- N = {n or 1_000_000} unless the case says otherwise; "
              f"{runs} run(s) per (case, lib), each a fresh process; "
              f"medians shown")
    results = []
    load0 = os.getloadavg()[0]
    with open(jpath, "w") as jf:
        for rnd in range(runs):
            order = libs[rnd % len(libs):] + libs[:rnd % len(libs)]
            for case in cases:
                for lib in ([SOLO[case]] if case in SOLO else order):
                    if case in STRING_CASES and lib not in STRING_LIBS:
                        if rnd == 0:
                            print(f"bench.py: {case}: no string-key adapter "
                                  f"for {lib}; skipped", file=sys.stderr)
                        continue
                    rec = run_one(binary, lib, case, n, args.timeout)
                    rec["run"] = rnd
                    results.append(rec)
                    jf.write(json.dumps(rec) + "\n")
                    jf.flush()
                    status = "ok" if rec.get("ok") else \
                        "FAILED " + rec.get("error", "")
                    ops = rec.get("ops_per_s")
                    print(f"[{rnd + 1}/{runs}] {case:5} {lib:9} "
                          f"{fmt_mops(ops):>8} Mops/s "
                          f"max={fmt_us(rec.get('max_ns'))}us {status}",
                          file=sys.stderr, flush=True)
    header += (f"\n- load average (1 min) at start {load0:.2f}, at end "
               f"{os.getloadavg()[0]:.2f}")
    text = summarise(results, libs, cases, header)
    with open(jpath[:-len(".jsonl")] + ".md", "w") as f:
        f.write(text)
    print(text)
    print(f"raw results: {os.path.relpath(jpath, ROOT)}", file=sys.stderr)
    return 0 if all(r.get("ok") for r in results) else 1


def cmd_ebr(args):
    binary = find_bin("ebr_vs_urcu", args.bin)
    runs = 1 if args.quick and not args.runs_given else args.runs
    rows = {}
    order = []
    now = datetime.datetime.now(datetime.timezone.utc)
    outdir = args.out or os.path.join(ROOT, "bench", "results")
    os.makedirs(outdir, exist_ok=True)
    base = os.path.join(outdir, now.strftime("%Y-%m-%dT%H%M%SZ") + "-ebr" +
                        ("-quick" if args.quick else ""))
    raw = open(base + ".jsonl", "w")
    for i in range(runs):
        cmd = [binary, "--json"] + (["--quick"] if args.quick else [])
        p = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=max(args.timeout, 900))
        if p.returncode != 0:
            sys.exit(f"bench.py: {' '.join(cmd)} failed: {p.stderr}")
        for line in p.stdout.splitlines():
            r = json.loads(line)
            r["run"] = i
            raw.write(json.dumps(r) + "\n")
            key = (r["part"], r["scheme"], r.get("what", ""),
                   r["readers"], r.get("busy_gp", 0))
            if key not in rows:
                rows[key] = []
                order.append(key)
            rows[key].append(r)
        print(f"ebr run {i + 1}/{runs} done", file=sys.stderr, flush=True)
    raw.close()
    lines = []
    out = lines.append
    command = " ".join(map(shlex.quote, [os.path.relpath(sys.argv[0], ROOT)]
                           + sys.argv[1:]))
    out(f"## ebr_vs_urcu {now.strftime('%Y-%m-%d %H:%M UTC')}, median of "
        f"{runs} process(es)\n\n- machine: {machine()}\n"
        f"- command: `{command}`\n")
    out("A. read-side enter+exit, ns per pair\n")
    out("| scheme | 1 reader | 2 readers | 1 reader + GP loop |")
    out("|---|---:|---:|---:|")
    schemes = []
    for k in order:
        if k[0] == "A" and k[1] not in schemes:
            schemes.append(k[1])
    for s in schemes:
        cells = []
        for rd, busy in ((1, 0), (2, 0), (1, 1)):
            v = rows.get(("A", s, "", rd, busy))
            cells.append("-" if not v else
                         f"{statistics.median(x['ns_per_pair'] for x in v):.2f}")
        out(f"| {s} | " + " | ".join(cells) + " |")
    out("\nB. grace periods and deferred frees, microseconds "
        "(readers constantly entering/leaving)\n")
    out("| scheme | what | readers | median | p99 | max (worst run) |")
    out("|---|---|---:|---:|---:|---:|")
    for k in order:
        if k[0] != "B":
            continue
        v = rows[k]
        mmed = statistics.median(x["median_ns"] for x in v) / 1e3
        p99 = statistics.median(x["p99_ns"] for x in v) / 1e3
        mx = max(x["max_ns"] for x in v) / 1e3
        out(f"| {k[1]} | {k[2]} | {k[3]} | {mmed:.1f} | {p99:.1f} | "
            f"{mx:.1f} |")
    text = "\n".join(lines) + "\n"
    with open(base + ".md", "w") as f:
        f.write(text)
    print(text)
    print(f"raw results: {os.path.relpath(base, ROOT)}.jsonl",
          file=sys.stderr)
    return 0


def cmd_sweep(args):
    """Bytes per entry after T1 across sizes (RSS is deterministic enough
    for one run each; growth steps make it a sawtooth)."""
    binary = find_bin("sm_bench", args.bin)
    have = libs_in(binary)
    libs = [l for l in args.libs.split(",") if l in have]
    ns = [int(float(x) * 1e6) for x in args.sizes.split(",")]
    now = datetime.datetime.now(datetime.timezone.utc)
    rows = []
    for n in ns:
        row = {}
        for lib in libs:
            rec = run_one(binary, lib, "T1", n, args.timeout)
            if rec.get("ok"):
                st = rec.get("lib_stats") or {}
                row[lib] = ((rec["rss_bytes"] - rec["rss_base_bytes"]) / n,
                            st.get("load_factor"))
            print(f"sweep n={n} {lib} done", file=sys.stderr, flush=True)
        rows.append((n, row))
    lines = [f"## bytes per entry after inserting N keys (T1), "
             f"{now.strftime('%Y-%m-%d %H:%M UTC')}", "",
             f"- machine: {machine()}", f"- repo: {git_rev()}", "",
             "| N | " + " | ".join(f"{l} B/entry" for l in libs) +
             " | " + " | ".join(f"{libs[0]}/{p}" for p in libs[1:]) + " |",
             "|---:|" + "---:|" * (2 * len(libs) - 1)]
    for n, row in rows:
        cells = []
        for lib in libs:
            v = row.get(lib)
            if v is None:
                cells.append("-")
            else:
                lf = f" (load {v[1]:.2f})" if v[1] is not None else ""
                cells.append(f"{v[0]:.1f}{lf}")
        for p in libs[1:]:
            a, b = row.get(libs[0]), row.get(p)
            cells.append(f"{a[0] / b[0]:.2f}x" if a and b else "-")
        lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    outdir = args.out or os.path.join(ROOT, "bench", "results")
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, now.strftime("%Y-%m-%dT%H%M%SZ") +
                           "-sweep.md"), "w") as f:
        f.write(text)
    print(text)
    return 0


def svg_t6(series, path, title):
    """series: list of (label, [(t_ns, latency_ns)], clear_ns).  Writes an
    SVG: per time bin the worst lookup latency (solid) and the median
    (thin), log-scale y, clear start at t = 0 and each clear's end
    marked."""
    import math
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
    W, H = 900, 520
    L, R, T, B = 80, 20, 50, 70
    pw, ph = W - L - R, H - T - B
    allt = [t for _, pts, _ in series for t, _ in pts]
    if not allt:
        raise SystemExit("bench.py: no trace points to plot")
    t0, t1 = min(allt), max(allt)
    t1 = max(t1, t0 + 1)
    nb = 300
    bw = (t1 - t0) / nb
    binned = []
    ymin, ymax = float("inf"), 1.0
    for label, pts, clear_ns in series:
        bins = [[] for _ in range(nb)]
        for t, lat in pts:
            bins[min(nb - 1, int((t - t0) / bw))].append(lat)
        mx, md = [], []
        for i, b in enumerate(bins):
            if b:
                b.sort()
                x = t0 + (i + 0.5) * bw
                mx.append((x, b[-1]))
                md.append((x, b[len(b) // 2]))
                ymin = min(ymin, b[len(b) // 2])
                ymax = max(ymax, b[-1])
        binned.append((label, mx, md, clear_ns))
    lo = 10 ** math.floor(math.log10(max(ymin, 1)))
    hi = 10 ** math.ceil(math.log10(ymax * 1.01))

    def X(t):
        return L + (t - t0) / (t1 - t0) * pw

    def Y(v):
        v = min(max(v, lo), hi)
        return T + ph - (math.log10(v) - math.log10(lo)) / \
            (math.log10(hi) - math.log10(lo)) * ph

    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" '
         f'height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" '
         f'font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">'
         f'{title}</text>']
    # y grid: decades
    d = lo
    while d <= hi * 1.001:
        y = Y(d)
        lab = (f"{d:.0f} ns" if d < 1e3 else f"{d / 1e3:.0f} us"
               if d < 1e6 else f"{d / 1e6:.0f} ms")
        o.append(f'<line x1="{L}" y1="{y:.1f}" x2="{L + pw}" y2="{y:.1f}" '
                 f'stroke="#ddd"/>')
        o.append(f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end">'
                 f'{lab}</text>')
        d *= 10
    # x ticks: every 5 ms (or finer for short spans)
    span_ms = (t1 - t0) / 1e6
    step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
                if span_ms / s <= 12) * 1e6
    tk = math.ceil(t0 / step) * step
    while tk <= t1:
        x = X(tk)
        o.append(f'<line x1="{x:.1f}" y1="{T}" x2="{x:.1f}" y2="{T + ph}" '
                 f'stroke="#eee"/>')
        o.append(f'<text x="{x:.1f}" y="{T + ph + 16}" text-anchor="middle">'
                 f'{tk / 1e6:g}</text>')
        tk += step
    o.append(f'<text x="{L + pw / 2}" y="{H - 35}" text-anchor="middle">'
             f'time from clear start, ms (lookup start; bins of '
             f'{bw / 1e3:.0f} us)</text>')
    o.append(f'<text x="18" y="{T + ph / 2}" text-anchor="middle" '
             f'transform="rotate(-90 18 {T + ph / 2})">reader lookup '
             f'latency (log scale)</text>')
    o.append(f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" '
             f'fill="none" stroke="#333"/>')
    x0 = X(0)
    o.append(f'<line x1="{x0:.1f}" y1="{T}" x2="{x0:.1f}" y2="{T + ph}" '
             f'stroke="black" stroke-width="1.5"/>')
    o.append(f'<text x="{x0 + 4:.1f}" y="{T + 14}">clear start</text>')
    for k, (label, mx, md, clear_ns) in enumerate(binned):
        c = colors[k % len(colors)]
        if clear_ns is not None and t0 <= clear_ns <= t1:
            xe = X(clear_ns)
            o.append(f'<line x1="{xe:.1f}" y1="{T}" x2="{xe:.1f}" '
                     f'y2="{T + ph}" stroke="{c}" stroke-dasharray="5,4"/>')
        for pts, wdt, op in ((md, 1, 0.6), (mx, 1.6, 1.0)):
            if pts:
                p = " ".join(f"{X(t):.1f},{Y(v):.1f}" for t, v in pts)
                o.append(f'<polyline points="{p}" fill="none" stroke="{c}" '
                         f'stroke-width="{wdt}" opacity="{op}"/>')
        ly = T + 14 + 16 * k
        o.append(f'<line x1="{L + pw - 300}" y1="{ly - 4}" '
                 f'x2="{L + pw - 280}" y2="{ly - 4}" stroke="{c}" '
                 f'stroke-width="2"/>')
        ce = "" if clear_ns is None else f", clear {clear_ns / 1e3:.0f} us"
        o.append(f'<text x="{L + pw - 274}" y="{ly}">{label}{ce}</text>')
    o.append(f'<text x="{L}" y="{H - 12}" fill="#555">thick: worst lookup '
             f'per bin; thin: median per bin; dashed: clear returned '
             f'(series colour)</text>')
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")


def cmd_plot_t6(args):
    """T6 with --trace for each library, then one SVG of the reader's
    latency around the clear."""
    binary = find_bin("sm_bench", args.bin)
    have = libs_in(binary)
    libs = [l for l in args.libs.split(",") if l in have]
    for l in args.libs.split(","):
        if l not in have:
            print(f"bench.py: {l} not compiled into {binary}; skipped",
                  file=sys.stderr)
    out = args.svg or os.path.join(ROOT, "docs", "img",
                                   "t6-clear-latency.svg")
    tmpdir = args.out or os.path.join(ROOT, "bench", "results")
    os.makedirs(tmpdir, exist_ok=True)
    series = []
    for lib in libs:
        csv = os.path.join(tmpdir, f"t6-trace-{lib}.csv")
        cmd = [binary, "--lib", lib, "--test", "T6", "--trace", csv]
        if args.n:
            cmd += ["--n", str(args.n)]
        p = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=args.timeout)
        rec = {}
        for line in p.stdout.splitlines():
            if line.startswith("{"):
                rec = json.loads(line)
        print(f"{' '.join(cmd)}\n  {p.stderr.strip()}", file=sys.stderr)
        if p.returncode != 0 or not os.path.exists(csv):
            print(f"bench.py: T6 {lib} failed; not plotted", file=sys.stderr)
            continue
        pts = []
        with open(csv) as f:
            next(f)
            for line in f:
                t, lat, _ = line.split(",")
                pts.append((int(t), int(lat)))
        series.append((rec.get("lib", lib), pts, rec.get("clear_ns")))
    if not series:
        sys.exit("bench.py: nothing to plot")
    n = args.n or 1_000_000
    svg_t6(series, out, f"T6: one reader's lookups while clear() empties "
           f"{n:,} keys")
    print(f"wrote {os.path.relpath(out, ROOT)}", file=sys.stderr)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", nargs="?", default="suite",
                    choices=["suite", "ebr", "sweep", "plot-t6"])
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: N=100000 (T10: 1M), 1 run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--libs", default=",".join(LIBS),
                    help="comma-separated, of " + ",".join(LIBS) +
                    " (default: all; those not compiled in are skipped "
                    "with a message).  cds_lfht (urcu) sometimes stops "
                    "resizing; such a run is reported as a timeout")
    ap.add_argument("--cases", default=",".join(DEFAULT_CASES))
    ap.add_argument("--n", type=int, default=0, help="N (default 1000000)")
    ap.add_argument("--bin", help="path of sm_bench / ebr_vs_urcu")
    ap.add_argument("--sizes", default="0.5,1,1.5,2,3,4,5,6,8,10",
                    help="sweep: N values in millions")
    ap.add_argument("--out", help="results directory")
    ap.add_argument("--svg", help="plot-t6: output SVG (default "
                    "docs/img/t6-clear-latency.svg)")
    ap.add_argument("--timeout", type=int, default=90,
                    help="seconds per process")
    args = ap.parse_args()
    args.runs_given = "--runs" in sys.argv
    if args.what == "ebr":
        return cmd_ebr(args)
    if args.what == "sweep":
        return cmd_sweep(args)
    if args.what == "plot-t6":
        if "--libs" not in sys.argv:
            args.libs = "stillmap,absl,tbb"
        return cmd_plot_t6(args)
    return cmd_suite(args)


if __name__ == "__main__":
    sys.exit(main())
