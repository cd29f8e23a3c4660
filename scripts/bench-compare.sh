#!/usr/bin/env bash
# Compare the benchmarks of two commits on this machine (issues 12 and 14: "every median ratio
# <= 1.05 for the hot path and <= 1.10 for the shipper and CLI benches, >= 9 interleaved
# repeats, against the commit before the issue's first commit").
#
#   scripts/bench-compare.sh BASE [HEAD] [-- BENCH_ARGS...]
#
# BASE is a commit (e.g. fae0eb6); HEAD defaults to the working tree this script lives in
# (uncommitted changes included). Both are built in release mode, each in its own target
# directory and with its own runlog / runlog-shipper binaries, then every selected bench runs
# BENCH_REPEATS times per tree with RUNLOG_BENCH_REPEAT=1 (one sample per configuration per
# invocation), base and head back to back, alternating which goes first. The figures are read
# from the tables the benches print (the same in both trees, so no bench needs changing), and
# a table of medians, ratios and targets is printed. See benches/README.md, "Comparing two
# commits".
#
# Environment:
#   BENCH_REPEATS=9             rounds (each runs every bench once per tree)
#   BENCHES="hotpath shipper cli"
#   BENCH_COMPARE_TARGET=DIR    where the base (and a HEAD commit) is built, kept between runs;
#                               first seeded with the release dependencies of the working
#                               tree's target dir (default: <that target dir>/bench-compare)
#   BENCH_COMPARE_OUT=DIR       where the samples, the logs and the table go (default: a new
#                               directory under BENCH_COMPARE_TARGET)
#   RUNLOG_BENCH_*              passed to the benches (RECORDS, LATENCY_RUNS, DIR, ...), except
#                               REPEAT (always 1) and SHIPPER / CLI (each tree's own binaries)
# BENCH_ARGS: a plain word goes to every bench (a filter: `-- runlog`); `BENCH:WORD` goes to
# that bench only (`-- hotpath:runlog shipper:throughput cli:local`).
#
# Exit status: 0 when every runlog figure meets its target, 1 when one misses, 2 when a bench
# failed (its log is named), 3 on a usage or setup error.
set -euo pipefail

readonly ALL_BENCHES="hotpath shipper cli"

die() {
    echo "bench-compare: $*" >&2
    exit 3
}

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2
    exit 3
}

# ---------------------------------------------------------------------------------------------
# Arguments and setup.

repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel) ||
    die "$(dirname "$0") is not in a git work tree"

base_ref=""
head_ref=""
bench_args=()
while (($#)); do
    case $1 in
    -h | --help) usage ;;
    --)
        shift
        bench_args=("$@")
        break
        ;;
    -*) die "unknown option $1 (bench arguments go after --)" ;;
    *)
        if [[ -z $base_ref ]]; then
            base_ref=$1
        elif [[ -z $head_ref ]]; then
            head_ref=$1
        else
            die "too many arguments: $1 (bench arguments go after --)"
        fi
        ;;
    esac
    shift
done
[[ -n $base_ref ]] || usage

repeats=${BENCH_REPEATS:-9}
[[ $repeats =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPEATS=$repeats is not a positive number"
read -r -a benches <<<"${BENCHES:-$ALL_BENCHES}"
((${#benches[@]})) || die "BENCHES is empty (choose from: $ALL_BENCHES)"
for b in "${benches[@]}"; do
    [[ " $ALL_BENCHES " == *" $b "* ]] || die "unknown bench $b in BENCHES (choose from: $ALL_BENCHES)"
done

# The target of a bench's median ratios (the issue's figures).
target_of() {
    case $1 in
    hotpath) echo 1.05 ;;
    *) echo 1.10 ;;
    esac
}

# Stop early, naming the package, rather than after a build of several minutes.
check_tools() {
    local missing=() t
    for t in git cargo jq; do
        command -v "$t" >/dev/null || missing+=("$t")
    done
    ((${#missing[@]} == 0)) || die "missing: ${missing[*]} (cargo: https://rustup.rs; jq: apt-get install jq)"
    local redis=()
    for b in "${benches[@]}"; do
        case $b in
        shipper) redis+=(redis-server redis-benchmark) ;;
        cli) redis+=(redis-server redis-cli) ;;
        esac
    done
    for t in "${redis[@]}"; do
        [[ " ${missing[*]} " == *" $t "* ]] || command -v "$t" >/dev/null || missing+=("$t")
    done
    ((${#missing[@]} == 0)) || die "missing: ${missing[*]}; the shipper and cli benches need them \
(Debian/Ubuntu: apt-get install redis-server redis-tools; the benches start their own server on a \
free port and never use the one on 6379)"
}
check_tools

base_commit=$(git -C "$repo" rev-parse --verify --quiet "$base_ref^{commit}") ||
    die "$base_ref is not a commit of $repo"
if [[ -n $head_ref ]]; then
    head_commit=$(git -C "$repo" rev-parse --verify --quiet "$head_ref^{commit}") ||
        die "$head_ref is not a commit of $repo"
    head_desc="$(git -C "$repo" log -1 --format='%h %s' "$head_commit")"
else
    head_commit=""
    head_desc="working tree of $repo at $(git -C "$repo" log -1 --format='%h %s')"
    if [[ -n $(git -C "$repo" status --porcelain --untracked-files=no) ]]; then
        head_desc+=" + uncommitted changes"
    fi
fi
base_desc="$(git -C "$repo" log -1 --format='%h %s' "$base_commit")"

# HEAD as the working tree builds where the developer's own builds go, so nothing is rebuilt
# for it; the base gets a target directory of its own, kept between runs (a release build from
# scratch takes minutes) and never shared with HEAD's, so neither clobbers the other.
head_default_target=$(realpath -m "${CARGO_TARGET_DIR:-$repo/target}")
cache=$(realpath -m "${BENCH_COMPARE_TARGET:-$head_default_target/bench-compare}")
base_target=$cache/base
if [[ -n $head_commit ]]; then
    head_target=$cache/head
else
    head_target=$head_default_target
fi
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=$(realpath -m "${BENCH_COMPARE_OUT:-$cache/results-$stamp-${base_commit:0:7}}")
mkdir -p "$out/logs" "$cache"
samples=$out/samples.tsv

# ---------------------------------------------------------------------------------------------
# Worktrees of the commits, removed on exit.

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-compare.XXXXXX")
worktrees=()
# shellcheck disable=SC2317 # called by the trap
cleanup() {
    local wt
    for wt in "${worktrees[@]}"; do
        git -C "$repo" worktree remove --force "$wt" 2>/dev/null || true
    done
    git -C "$repo" worktree prune 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# checkout COMMIT NAME: a detached worktree of COMMIT at $work/NAME (not in a subshell: the
# list of worktrees to remove lives in this shell).
checkout() {
    git -C "$repo" worktree add --quiet --detach "$work/$2" "$1" >&2 ||
        die "cannot make a worktree of $1 in $work/$2"
    worktrees+=("$work/$2")
}

checkout "$base_commit" base
base_tree=$work/base
if [[ -n $head_commit ]]; then
    checkout "$head_commit" head
    head_tree=$work/head
else
    head_tree=$repo
fi

# ---------------------------------------------------------------------------------------------
# Builds.

# Which binaries the selected benches run (they would otherwise build them themselves, with
# whatever cargo finds at run time: each tree's bench is given its own tree's binaries instead).
needs_shipper=0
needs_cli=0
for b in "${benches[@]}"; do
    case $b in
    shipper) needs_shipper=1 ;;
    cli) needs_shipper=1 needs_cli=1 ;;
    esac
done

# build SIDE TREE TARGET_DIR: build the selected benches and the binaries they need; sets
# exe_<side>_<bench> and bin_<side>_<binary> (paths from cargo's JSON artifact messages).
build() {
    local side=$1 tree=$2 target=$3 b name path
    local log=$out/logs/build-$side.log
    local bench_sel=()
    for b in "${benches[@]}"; do
        [[ -f $tree/benches/benches/$b.rs ]] || die "$side ($tree) has no bench $b"
        bench_sel+=(--bench "$b")
    done
    echo "building $side in $target (log: $log)" >&2
    if ! (cd "$tree" && CARGO_TARGET_DIR=$target cargo bench -p runlog-benches "${bench_sel[@]}" \
        --no-run --message-format=json-render-diagnostics) >"$out/logs/build-$side-benches.json" 2>"$log"; then
        tail -n 30 "$log" >&2
        die "building the benches of $side failed (full log: $log)"
    fi
    while IFS=$'\t' read -r name path; do
        printf -v "exe_${side}_$name" '%s' "$path"
    done < <(jq -r 'select(.reason == "compiler-artifact" and any(.target.kind[]; . == "bench")
                     and .executable != null) | [.target.name, .executable] | @tsv' \
        "$out/logs/build-$side-benches.json")
    for b in "${benches[@]}"; do
        name=exe_${side}_$b
        [[ -n ${!name:-} && -x ${!name} ]] || die "cargo reported no executable for bench $b of $side"
    done

    local bins=()
    ((needs_cli)) && bins+=(-p runlog-cli --bin runlog)
    ((needs_shipper)) && bins+=(-p runlog-shipper --bin runlog-shipper)
    ((${#bins[@]})) || return 0
    # `--release`, as the benches themselves build these binaries.
    if ! (cd "$tree" && CARGO_TARGET_DIR=$target cargo build --release "${bins[@]}" \
        --message-format=json-render-diagnostics) >"$out/logs/build-$side-bins.json" 2>>"$log"; then
        tail -n 30 "$log" >&2
        die "building the binaries of $side failed (full log: $log)"
    fi
    while IFS=$'\t' read -r name path; do
        printf -v "bin_${side}_${name//-/_}" '%s' "$path"
    done < <(jq -r 'select(.reason == "compiler-artifact" and any(.target.kind[]; . == "bin")
                     and .executable != null) | [.target.name, .executable] | @tsv' \
        "$out/logs/build-$side-bins.json")
    local want=()
    ((needs_cli)) && want+=(runlog)
    ((needs_shipper)) && want+=(runlog_shipper)
    for name in "${want[@]}"; do
        name=bin_${side}_$name
        [[ -n ${!name:-} && -x ${!name} ]] || die "cargo reported no ${name#bin_"${side}"_} binary for $side"
    done
}

# seed TO FROM: a first build in target dir TO starts from a copy of FROM's release
# dependencies. Cargo's file names do not depend on where the tree is, and its fingerprints
# rebuild whatever differs (the workspace's own crates always are: their checkout is new), so
# this only saves building the same dependencies again, many minutes on a small machine.
seed() {
    local to=$1 from=$2 d
    [[ $to != "$from" && ! -e $to/release && -d $from/release/deps ]] || return 0
    echo "seeding $to/release with the dependencies built in $from/release" >&2
    mkdir -p "$to/release"
    for d in deps build .fingerprint; do
        [[ -d $from/release/$d ]] && cp -a --reflink=auto "$from/release/$d" "$to/release/"
    done
    return 0
}

seed "$head_target" "$head_default_target"
build head "$head_tree" "$head_target"
seed "$base_target" "$head_target"
build base "$base_tree" "$base_target"

# ---------------------------------------------------------------------------------------------
# Parsing the benches' tables. Each parser reads one invocation's stdout and prints
#   config <TAB> unit <TAB> better (lower|higher) <TAB> kind <TAB> value
# kind: `runlog` (runlog's code is measured: the target applies), `diag` (runlog's code, but
# too noisy to hold to a target, or a diagnostic part), `control` (a baseline that runs no
# runlog code: its ratio shows how noisy the machine was). The tables are the human ones
# every version of the benches prints, with RUNLOG_BENCH_REPEAT=1 their medians are the sample.

# shellcheck disable=SC2317 # the parsers are called as parse_$bench
# hotpath: `config threads ns/record min max per-thread start end  records check`.
parse_hotpath() {
    awk -v OFS='\t' '
        /^config +threads +ns\/record/ { table = 1; next }
        table && NF == 0 { table = 0 }
        table && $2 ~ /^[0-9]+$/ && $3 ~ /^[0-9.]+$/ {
            kind = ($1 ~ /^runlog/) ? "runlog" : "control"
            print $1 "/" $2 "t", "ns/record", "lower", kind, $3
            # The per-record hot path alone: without starting the run and the commit.
            if ($1 ~ /^runlog/ && $7 + $8 > 0) print $1 "/" $2 "t w/o start+commit", "ns/record", "lower", kind, $3 - $7 - $8
        }'
}

# shellcheck disable=SC2317
# shipper: the throughput, memory and latency tables (`NAME  median min max extra`; the
# names have spaces, the numbers thousands separators).
parse_shipper() {
    awk -v OFS='\t' '
        function row(first, last,   s, i) {
            s = $first
            for (i = first + 1; i <= last; i++) s = s " " $i
            return s
        }
        /^throughput +records\/s/ { table = "tp"; next }
        /^memory +bytes\/record/ { table = "mem"; next }
        /^latency, commit to visible \(ms\)/ { table = "lat"; next }
        NF == 0 || /^\(/ || /^ratio/ { table = ""; next }
        table == "tp" && NF >= 5 {
            name = row(1, NF - 4); v = $(NF - 3); gsub(",", "", v)
            if (v !~ /^[0-9.]+$/) next
            if (name ~ /^redis-benchmark rpush/) print "rpush -P 64 (redis-benchmark)", "req/s", "higher", "control", v
            else if (name ~ /^shipper, in-process/) print "ship, in-process (lib)", "records/s", "higher", "runlog", v
            else if (name ~ /^shipper binary --once/) print "ship, runlog-shipper --once", "records/s", "higher", "runlog", v
            else if (name ~ /^read segment files/) print "read segment files only", "records/s", "higher", "control", v
            else if (name ~ /^prepare only/) print "prepare only", "records/s", "higher", "runlog", v
            else if (name ~ /^upload only/) print "upload only", "records/s", "higher", "runlog", v
        }
        table == "mem" && NF >= 5 {
            name = row(1, NF - 4); v = $(NF - 3)
            if (v !~ /^-?[0-9.]+$/) next
            if (name ~ /^Redis used_memory/) print "Redis used_memory / record", "bytes/rec", "lower", "diag", v
            else if (name ~ /^chunk bytes/) print "chunk bytes / record", "bytes/rec", "lower", "runlog", v
        }
        table == "lat" && NF == 4 && $2 ~ /^[0-9.]+$/ {
            kind = ($1 == "max") ? "diag" : "runlog"
            print "latency " $1, "ms", "lower", kind, $2
        }'
}

# shellcheck disable=SC2317
# cli: `wall time (ms)  median min max ns/rec MB/s`, rows `PART (runlog|baseline)` and
# `grep > /dev/null`.
parse_cli() {
    awk -v OFS='\t' '
        /^wall time \(ms\)/ { table = 1; next }
        table && NF == 0 { table = 0 }
        table && $2 ~ /^\((runlog|baseline)\)$/ && $3 ~ /^[0-9.]+$/ {
            who = substr($2, 2, length($2) - 2)
            print $1 " (" who ")", "ms", "lower", (who == "runlog") ? "runlog" : "control", $3
        }
        table && $1 == "grep" && $2 == ">" && $4 ~ /^[0-9.]+$/ {
            print "grep > /dev/null (baseline)", "ms", "lower", "control", $4
        }'
}

# ---------------------------------------------------------------------------------------------
# Running.

# The arguments for bench $1: plain words, and BENCH:WORD for this bench.
args_for() {
    local a
    for a in "${bench_args[@]}"; do
        case $a in
        "$1":*) printf '%s\n' "${a#*:}" ;;
        *:*) ;;
        *) printf '%s\n' "$a" ;;
        esac
    done
}

failures=0
# run_one ROUND SIDE BENCH: one invocation; its samples appended to $samples.
run_one() {
    local round=$1 side=$2 bench=$3 tree exe log args=() rc=0
    [[ $side == base ]] && tree=$base_tree || tree=$head_tree
    local exe_var=exe_${side}_$bench
    exe=${!exe_var}
    log=$out/logs/$bench-r$round-$side.txt
    mapfile -t args < <(args_for "$bench")
    local env=(RUNLOG_BENCH_REPEAT=1)
    if ((needs_shipper)); then
        local v=bin_${side}_runlog_shipper
        env+=(RUNLOG_BENCH_SHIPPER="${!v}")
    fi
    if ((needs_cli)); then
        local v=bin_${side}_runlog
        env+=(RUNLOG_BENCH_CLI="${!v}")
    fi
    local t0=$SECONDS
    # As `cargo bench` runs it: from the package directory, with `--bench`.
    (cd "$tree/benches" && env "${env[@]}" "$exe" --bench "${args[@]}") >"$log" 2>"$log.stderr" || rc=$?
    local n=0 config unit better kind value
    while IFS=$'\t' read -r config unit better kind value; do
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
            "$round" "$side" "$bench" "$config" "$unit" "$better" "$kind" "$value" >>"$samples"
        n=$((n + 1))
    done < <("parse_$bench" <"$log")
    local note=""
    ((rc == 0 && n > 0)) || note=", FAILED (exit $rc): see $log and $log.stderr"
    printf '  round %d/%d %-7s %-4s %4d s, %2d figures%s\n' "$round" "$repeats" "$bench" "$side" \
        $((SECONDS - t0)) "$n" "$note" >&2
    if ((rc != 0 || n == 0)); then
        failures=$((failures + 1))
    fi
}

# The benches write their files under the profile directory of their executable
# (target/release) unless RUNLOG_BENCH_DIR says otherwise: warn when the two trees' are on
# different disks, since the journal's fsyncs are part of what is measured.
same_disk_check() {
    [[ -z ${RUNLOG_BENCH_DIR:-} ]] || return 0
    local side exe_var devs=()
    for side in base head; do
        exe_var=exe_${side}_${benches[0]}
        devs+=("$(df -P "$(dirname "$(dirname "${!exe_var}")")" | awk 'NR == 2 { print $1 }')")
    done
    [[ ${devs[0]} == "${devs[1]}" ]] ||
        echo "warning: base writes its files on ${devs[0]}, head on ${devs[1]}: set RUNLOG_BENCH_DIR" >&2
}
same_disk_check

{
    echo "base: $base_desc ($base_commit)"
    echo "head: $head_desc"
    echo "benches: ${benches[*]}; $repeats rounds, RUNLOG_BENCH_REPEAT=1;$(env | grep '^RUNLOG_BENCH_' | grep -Ev '^RUNLOG_BENCH_(REPEAT|SHIPPER|CLI)=' | sed 's/^/ /' | tr '\n' ' ')"
    [[ ${#bench_args[@]} -eq 0 ]] || echo "bench arguments: ${bench_args[*]}"
    echo "$(nproc) CPUs; load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/header.txt" >&2
printf 'round\tside\tbench\tconfig\tunit\tbetter\tkind\tvalue\n' >"$samples"

started=$SECONDS
for ((round = 1; round <= repeats; round++)); do
    # Base first in odd rounds, head first in even ones, so a drift of the machine (warming
    # up, another job starting) weighs on both alike.
    if ((round % 2)); then sides=(base head); else sides=(head base); fi
    for bench in "${benches[@]}"; do
        for side in "${sides[@]}"; do
            run_one "$round" "$side" "$bench"
        done
    done
    elapsed=$((SECONDS - started))
    echo "round $round/$repeats done, $((elapsed / 60)) min $((elapsed % 60)) s so far, ~$(((elapsed * (repeats - round) / round + 59) / 60)) min left" >&2
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/header.txt" >&2

# ---------------------------------------------------------------------------------------------
# The table.

summarize() {
    awk -F '\t' -v hot="$(target_of hotpath)" -v other="$(target_of shipper)" '
        function sortv(a, n,   i, j, x) {
            for (i = 2; i <= n; i++) {
                x = a[i]
                for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]
                a[j + 1] = x
            }
        }
        function median(k, side,   n, i, a) {
            n = cnt[k, side]
            for (i = 1; i <= n; i++) a[i] = val[k, side, i]
            sortv(a, n)
            lo[side] = a[1]; hi[side] = a[n]
            if (n == 0) return ""
            return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        function fmt(x) {
            if (x == "") return "-"
            if (x >= 10000) return sprintf("%.0f", x)
            if (x >= 100) return sprintf("%.1f", x)
            return sprintf("%.2f", x)
        }
        # ratio > 1 always means head is worse.
        function ratio(b, h, better) {
            if (b == "" || h == "" || b + 0 == 0 || h + 0 == 0) return ""
            return (better == "higher") ? b / h : h / b
        }
        NR == 1 { next }
        {
            k = $3 SUBSEP $4
            if (!(k in seen)) { seen[k] = 1; order[++keys] = k; unit[k] = $5; better[k] = $6; kind[k] = $7 }
            val[k, $2, ++cnt[k, $2]] = $8
            at[k, $2, $1] = $8
        }
        END {
            printf "%-8s %-37s %-11s %11s %21s %11s %21s %6s %12s %7s  %s\n", "bench", "configuration", "unit",
                "base median", "base min..max", "head median", "head min..max", "ratio", "paired range", "target", "verdict"
            for (i = 1; i <= keys; i++) {
                k = order[i]; split(k, parts, SUBSEP)
                b = median(k, "base"); bl = lo["base"]; bh = hi["base"]
                h = median(k, "head"); hl = lo["head"]; hh = hi["head"]
                r = ratio(b, h, better[k])
                target = (parts[1] == "hotpath") ? hot : other
                # The ratio of each round (base and head measured back to back).
                pmin = ""; pmax = ""
                for (rd = 1; rd <= 1000; rd++) {
                    if (!((k, "base", rd) in at) || !((k, "head", rd) in at)) continue
                    p = ratio(at[k, "base", rd], at[k, "head", rd], better[k])
                    if (p == "") continue
                    if (pmin == "" || p < pmin) pmin = p
                    if (pmax == "" || p > pmax) pmax = p
                }
                if (r == "") verdict = "NO DATA"
                else verdict = (r <= target) ? "PASS" : "MISS"
                if (kind[k] != "runlog") verdict = "(" verdict ", " kind[k] ")"
                else if (verdict == "MISS") misses++
                else if (verdict == "NO DATA") nodata++
                if (kind[k] == "runlog") counted++
                printf "%-8s %-37s %-11s %11s %21s %11s %21s %6s %12s %7s  %s\n", parts[1], parts[2],
                    unit[k] (better[k] == "higher" ? " ^" : ""), fmt(b), fmt(bl) ".." fmt(bh), fmt(h),
                    fmt(hl) ".." fmt(hh), (r == "" ? "-" : sprintf("%.3f", r)),
                    (pmin == "" ? "-" : sprintf("%.2f..%.2f", pmin, pmax)), "<= " target, verdict
            }
            print ""
            print "ratio: head / base, or base / head for figures where bigger is better (unit marked ^),"
            print "  so a ratio above 1 always means head is worse; medians over the rounds. paired range: the"
            print "  ratios of each round (base and head back to back). /1t, /2t: threads. Only `runlog` rows"
            print "  count; (control) rows run no runlog code and show how noisy the machine was, (diag) rows are"
            print "  runlog code too noisy or too partial to hold to a target."
            printf "%d of %d runlog figures miss their target%s\n", misses, counted,
                (nodata ? sprintf(", %d have no data", nodata) : "")
            exit (misses || nodata) ? 1 : 0
        }' "$samples"
}

status=0
summarize | tee "$out/table.txt" || status=1
elapsed=$((SECONDS - started))
echo
echo "took $((elapsed / 60)) min $((elapsed % 60)) s (builds not included)"
echo "raw samples: $samples"
echo "table: $out/table.txt; each invocation's output: $out/logs/"
if ((failures)); then
    echo "$failures bench invocation(s) failed: see the FAILED lines above" >&2
    status=2
fi
exit "$status"
