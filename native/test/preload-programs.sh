#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# shim-programs and shim-jvm: real programs give the same output on the segfit
# core (through the LD_PRELOAD malloc shim) as on glibc malloc.
#
#   preload-programs.sh <path/to/libsegfit-malloc.so> <work dir>
#   preload-programs.sh <path/to/libsegfit-malloc.so> <work dir> --jvm <JDK home> <libsegfit.so>
#
# Each program runs twice, without and with the shim, and the outputs must be byte-identical.
# Native programs: python3 (an allocation-heavy script: dicts, lists, strings, sets, json), sort
# (100k generated lines, two threads, small buffer so it spills to temp files), gcc (compiles a
# C file at -O2: the object files must match, and the linked program must print the same), tar
# (an archive of the source tree with fixed metadata) and git (a repository's tree hash).
# With --jvm, the JVM: javac compiles the project's Java sources (every class file must match),
# then java runs PreloadWorkload.java (four threads, the GC and the JIT busy, segfit itself
# through JNI on the classes javac just made) and must print the same digests.
# SEGFIT_SHIM_STRICT=1 makes the shim abort on a double free; SEGFIT_SHIM_REPORT proves the
# shim served the allocations of every process (it appends one line per process at exit).
set -eu

usage="usage: preload-programs.sh <libsegfit-malloc.so> <work dir>
       [--jvm <JDK home> <libsegfit.so>]"
shim=${1:?$usage}
work=${2:?$usage}
jdk=
if [ $# -gt 2 ]; then
  [ "$3" = --jvm ] && [ $# -eq 5 ] || { echo "$usage" >&2; exit 2; }
  jdk=$4
  jni=$5
  [ -x "$jdk/bin/javac" ] && [ -r "$jni" ] || { echo "no javac in $jdk or no $jni" >&2; exit 1; }
fi
case $shim in /*) ;; *) shim=$(pwd)/$shim ;; esac
[ -r "$shim" ] || { echo "no shim at $shim" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
mkdir -p "$work"
cd "$work"
report=$work/report
python=/usr/bin/python3
[ -x "$python" ] || python=$(command -v python3 || true)
failed=0

# run NAME CMD...: runs CMD plain (output in NAME.plain) and on the shim (NAME.segfit).
run() {
  name=$1
  shift
  "$@" >"$name.plain" 2>"$name.plain.err" || { echo "FAIL $name: fails without the shim" >&2; cat "$name.plain.err" >&2; exit 1; }
  rm -f "$report"
  if ! env LD_PRELOAD="$shim" SEGFIT_SHIM_STRICT=1 SEGFIT_SHIM_REPORT="$report" "$@" >"$name.segfit" 2>"$name.segfit.err"; then
    echo "FAIL $name: exit status $? on the shim" >&2
    cat "$name.segfit.err" >&2
    failed=1
    return
  fi
  if ! cmp -s "$name.plain" "$name.segfit"; then
    echo "FAIL $name: output differs on the shim" >&2
    diff "$name.plain" "$name.segfit" | head -20 >&2
    failed=1
    return
  fi
  procs=$(grep -c 'segfit-malloc:' "$report" 2>/dev/null || true)
  allocs=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^allocs=/) { sub("allocs=", "", $i); s += $i } } END { print s + 0 }' "$report" 2>/dev/null || echo 0)
  if [ "${procs:-0}" -lt 1 ] || [ "$allocs" -lt 10 ]; then
    echo "FAIL $name: the shim did not serve the allocations (report: ${procs:-0} processes, $allocs allocs)" >&2
    failed=1
    return
  fi
  echo "ok   $name: same output ($(wc -c <"$name.plain") bytes); shim served $allocs allocations in $procs processes"
}

# --- the JVM: javac, then a multi-threaded workload ------------------------------------------------
if [ -n "$jdk" ]; then
  root=$(cd "$here/../.." && pwd)
  # Without the packages of optional dependencies (io.segfit.netty needs Netty, io.segfit.micrometer
  # Micrometer) and so without the module descriptor that names them: javac sees no jar but the JDK's.
  find "$root/src/main/java" -name '*.java' ! -name module-info.java ! -path '*/io/segfit/netty/*' \
    ! -path '*/io/segfit/micrometer/*' | LC_ALL=C sort >sources.txt
  # The class files, by name and content hash; classes/ is left as the last (shim) run made it.
  javac="'$jdk/bin/javac' --release 17 -nowarn -d classes @sources.txt"
  run javac sh -c "rm -rf classes && $javac && cd classes && find . -type f | LC_ALL=C sort | xargs sha256sum"
  run java "$jdk/bin/java" -Xmx128m -XX:+UseG1GC --enable-native-access=ALL-UNNAMED \
    -Dsegfit.library.path="$jni" -cp classes "$here/PreloadWorkload.java"
  [ "$failed" -eq 0 ] || { echo "shim-jvm: FAILED" >&2; exit 1; }
  echo "shim-jvm: ok"
  exit 0
fi

# --- python: allocation-heavy script ------------------------------------------------------------
cat >alloc.py <<'EOF'
import hashlib, json, random
random.seed(1234)
h = hashlib.sha256()
for rnd in range(6):
    d = {}
    for i in range(60000):
        k = "key-%d-%s" % (i, "x" * (i % 40))
        d[k] = [i, str(i) * (i % 7), {"n": i, "s": k[::-1]}]
    lst = sorted(d.items(), key=lambda kv: (len(kv[0]), kv[0]))
    s = set(k[:12] for k in d)
    blob = json.dumps(lst[::97], sort_keys=True)
    h.update(blob.encode())
    h.update(str(len(s)).encode())
    words = ["".join(random.choice("abcdefghij") for _ in range(random.randint(1, 30))) for _ in range(20000)]
    h.update(" ".join(sorted(words)).encode())
    big = bytearray()
    for i in range(2000):
        big += bytes(i % 251 for _ in range(257))
    h.update(big)
    del d, lst, s, blob, words, big
print(h.hexdigest())
EOF
if [ -n "$python" ]; then
  run python env PYTHONMALLOC=malloc "$python" alloc.py   # every object through malloc, not pymalloc
else
  echo "skip python: no python3"
fi

# --- sort: 100k lines, two threads, spilling to temporary files --------------------------------------
awk 'BEGIN { x = 12345; for (i = 0; i < 100000; i++) { x = (x * 1103515245 + 12345) % 2147483648; printf "%d %s line-%d\n", x % 1000, substr("qwertyuiopasdfghjklzxcvbnm", x % 20 + 1, x % 7 + 1), i } }' >lines.txt
mkdir -p sort-tmp
run sort env LC_ALL=C sort --parallel=2 -S 1M -T sort-tmp -k2,2 -k1,1n lines.txt

# --- gcc: compile at -O2 and compare the objects, then link and run -------------------------------
cat >prog.c <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
struct node { struct node *l, *r; int key; };
static struct node *insert(struct node *t, int k) {
  if (!t) { t = calloc(1, sizeof *t); t->key = k; return t; }
  if (k < t->key) t->l = insert(t->l, k); else t->r = insert(t->r, k);
  return t;
}
static long sum(const struct node *t, int depth) { return t ? t->key * (long)depth + sum(t->l, depth + 1) + sum(t->r, depth + 1) : 0; }
int main(void) {
  struct node *t = NULL; unsigned x = 7;
  for (int i = 0; i < 200000; i++) { x = x * 1664525u + 1013904223u; t = insert(t, (int)(x >> 8)); }
  char *s = NULL; size_t n = 0;
  for (int i = 0; i < 5000; i++) { s = realloc(s, n + 32); n += (size_t)snprintf(s + n, 32, "%d,", i); }
  printf("%ld %zu %.20s\n", sum(t, 1), strlen(s), s + n - 20);
  return 0;
}
EOF
run gcc-obj sh -c 'gcc -O2 -c prog.c -o prog.o && od -An -tx1 prog.o'
run gcc-obj-big sh -c "gcc -O2 -I'$here/../include' -I'$here/../src' -D_GNU_SOURCE -c '$here/fuzz-diff.c' -o fuzz-diff.o && od -An -tx1 fuzz-diff.o"
gcc -O2 prog.c -o prog
run prog ./prog

# --- tar: an archive of the sources with fixed metadata ------------------------------------------------
run tar tar --sort=name --mtime=2020-01-01 --owner=0 --group=0 --numeric-owner -C "$here/.." -cf - include test

# --- git: index a copy of the sources and hash the tree -----------------------------------------------
if command -v git >/dev/null; then
  run git sh -c "rm -rf gitrepo && mkdir gitrepo && cp -r '$here/../include' '$here' gitrepo/ && cd gitrepo && git init -q . && git add -A && git write-tree && git ls-files -s"
fi

[ "$failed" -eq 0 ] || { echo "shim-programs: FAILED" >&2; exit 1; }
echo "shim-programs: ok"
