/* SPDX-License-Identifier: Apache-2.0 */
/* segfit — C benchmark driver: runs every per-allocator bench binary (a fresh process per
 * allocator and group of shapes, allocators interleaved so that drift hits them all alike), takes
 * the median of the rounds per shape, and prints one table with each figure's ratio to the best
 * allocator for that shape, then the project's targets for segfit, met or missed by how much.
 * --markdown FILE writes the same as markdown (scripts/bench-native puts it into
 * docs/benchmarks.md). Every figure printed comes from the bench binaries' output of this run;
 * nothing is typed in.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef BENCH_SHIM_PATH
#define BENCH_SHIM_PATH ""
#endif

#define MAX_ALLOCS 8
#define MAX_SHAPES 32
#define MAX_ROUNDS 15

typedef struct alloc_s {
  const char *label;    /* column title */
  const char *binary;   /* file name next to the driver */
  const char *preload;  /* LD_PRELOAD for the run, or NULL */
  int ok;
} alloc_t;

static alloc_t g_allocs[MAX_ALLOCS] = {
    {"segfit", "bench-segfit", NULL, 1},
    {"segfit-shim", "bench-glibc", BENCH_SHIM_PATH, 1},
    {"mimalloc", "bench-mimalloc", NULL, 1},
    {"jemalloc", "bench-jemalloc", NULL, 1},
    {"glibc", "bench-glibc", NULL, 1},
};
static int g_nallocs = 5;

static char g_shape[MAX_SHAPES][64];
static char g_unit[MAX_SHAPES][32];
static int g_nshapes;
static double g_value[MAX_ALLOCS][MAX_SHAPES][MAX_ROUNDS];
static int g_count[MAX_ALLOCS][MAX_SHAPES];

static int shape_index(const char *name, const char *unit) {
  for (int i = 0; i < g_nshapes; i++)
    if (strcmp(g_shape[i], name) == 0) return i;
  if (g_nshapes == MAX_SHAPES) return -1;
  snprintf(g_shape[g_nshapes], sizeof g_shape[0], "%s", name);
  snprintf(g_unit[g_nshapes], sizeof g_unit[0], "%s", unit);
  return g_nshapes++;
}

/* Runs one bench binary and records its "shape value unit" lines. */
static int run_one(int a, const char *dir, char *args[]) {
  if (!g_allocs[a].ok) return -1;
  char path[PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/%s", dir, g_allocs[a].binary);
  int fds[2];
  if (pipe(fds) != 0) return -1;
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    if (g_allocs[a].preload != NULL) setenv("LD_PRELOAD", g_allocs[a].preload, 1);
    args[0] = path;
    execv(path, args);
    fprintf(stderr, "bench-driver: cannot run %s: %s\n", path, strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  FILE *in = fdopen(fds[0], "r");
  char line[256], name[64], unit[32];
  double v;
  while (fgets(line, sizeof line, in) != NULL) {
    if (sscanf(line, "%63s %lf %31s", name, &v, unit) != 3) continue;
    int s = shape_index(name, unit);
    if (s >= 0 && g_count[a][s] < MAX_ROUNDS) g_value[a][s][g_count[a][s]++] = v;
  }
  fclose(in);
  int status;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "bench-driver: %s (%s) failed with status %d\n", g_allocs[a].label,
            g_allocs[a].binary, status);
    return -1;
  }
  return 0;
}

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return a < b ? -1 : a > b;
}

static double median(int a, int s) {
  int n = g_count[a][s];
  if (n == 0 || !g_allocs[a].ok) return -1;
  double v[MAX_ROUNDS];
  memcpy(v, g_value[a][s], (size_t)n * sizeof *v);
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int find_alloc(const char *label) {
  for (int a = 0; a < g_nallocs; a++)
    if (strcmp(g_allocs[a].label, label) == 0 && g_allocs[a].ok) return a;
  return -1;
}

static int find_shape(const char *name) {
  for (int s = 0; s < g_nshapes; s++)
    if (strcmp(g_shape[s], name) == 0) return s;
  return -1;
}

/* "burst-live" is the workload's own size, not a result: shown, never ranked. */
static int ranked(int s) { return strcmp(g_shape[s], "burst-live") != 0; }

static double best_of(int s) {
  double best = -1;
  for (int a = 0; a < g_nallocs; a++) {
    double v = median(a, s);
    if (v >= 0 && (best < 0 || v < best)) best = v;
  }
  return best;
}

static void print_table(FILE *out, int md) {
  if (md) {
    fprintf(out, "| shape | unit |");
    for (int a = 0; a < g_nallocs; a++) fprintf(out, " %s |", g_allocs[a].label);
    fprintf(out, "\n|---|---|");
    for (int a = 0; a < g_nallocs; a++) fprintf(out, "---:|");
    fprintf(out, "\n");
  } else {
    fprintf(out, "%-20s %-9s", "shape", "unit");
    for (int a = 0; a < g_nallocs; a++) fprintf(out, " %17s", g_allocs[a].label);
    fprintf(out, "\n");
  }
  for (int s = 0; s < g_nshapes; s++) {
    double best = best_of(s);
    fprintf(out, md ? "| %s | %s |" : "%-20s %-9s", g_shape[s], g_unit[s]);
    for (int a = 0; a < g_nallocs; a++) {
      double v = median(a, s);
      char cell[48];
      if (v < 0) snprintf(cell, sizeof cell, "-");
      else if (!ranked(s) || best <= 0) snprintf(cell, sizeof cell, "%.2f", v);
      else snprintf(cell, sizeof cell, "%.2f (%.2fx)", v, v / best);
      fprintf(out, md ? " %s |" : " %17s", cell);
    }
    fprintf(out, "\n");
  }
}

/* Targets from the project's research notes (section 7.2) and the issue. */
static void print_targets(FILE *out, int md) {
  int sf = find_alloc("segfit"), mi = find_alloc("mimalloc"), gl = find_alloc("glibc");
  if (sf < 0) return;
  fprintf(out, md ? "\n| target (segfit) | measured | limit | result |\n|---|---:|---:|---|\n"
                  : "\ntargets for segfit:\n");
  char what[160];
#define ROW(name, measured, limit, pass_if_le)                                                  \
  do {                                                                                          \
    int pass_ = (pass_if_le) ? (measured) <= (limit) : (measured) >= (limit);                   \
    double by_ = (pass_if_le) ? (measured) / (limit) : (limit) / (measured);                    \
    char res_[48];                                                                              \
    if (pass_) snprintf(res_, sizeof res_, "met");                                              \
    else if (by_ < 2) snprintf(res_, sizeof res_, "MISSED by %.0f%%", (by_ - 1) * 100);         \
    else snprintf(res_, sizeof res_, "MISSED by %.1fx", by_);                                  \
    fprintf(out, md ? "| %s | %.2f | %s%.2f | %s |\n" : "  %-44s %8.2f  %s%-8.2f %s\n", (name), \
            (measured), (pass_if_le) ? "<= " : ">= ", (limit), res_);                            \
  } while (0)
  for (int s = 0; s < g_nshapes; s++) {
    double v = median(sf, s);
    if (v < 0) continue;
    if (mi >= 0 && (strncmp(g_shape[s], "hot-", 4) == 0 || strcmp(g_shape[s], "batch") == 0)) {
      snprintf(what, sizeof what, "%.63s: ratio to mimalloc", g_shape[s]);
      ROW(what, v / median(mi, s), 1.10, 1);
    }
    if (ranked(s) && strncmp(g_shape[s], "burst", 5) != 0) {
      snprintf(what, sizeof what, "%.63s: ratio to the best", g_shape[s]);
      ROW(what, v / best_of(s), 2.0, 1);
    }
  }
  int gr = find_shape("grow-realloc"), gc = find_shape("grow-copy");
  int gm = find_shape("grow-realloc-mixed");
  if (gr >= 0 && gc >= 0 && median(sf, gr) > 0) {
    ROW("grow: copying time / realloc time", median(sf, gc) / median(sf, gr), 20.0, 0);
    if (gl >= 0 && median(gl, gr) > 0)
      ROW("grow-realloc: ratio to glibc", median(sf, gr) / median(gl, gr), 1.5, 1);
    if (gl >= 0 && gm >= 0 && median(gl, gm) > 0)
      ROW("grow-realloc-mixed: ratio to glibc", median(sf, gm) / median(gl, gm), 1.5, 1);
  }
  int br = find_shape("burst-rss"), bl = find_shape("burst-live");
  if (br >= 0 && bl >= 0) {
    double live = median(sf, bl);
    snprintf(what, sizeof what, "burst-rss MiB (live %.1f MiB + 10%% + 8)", live);
    ROW(what, median(sf, br), live * 1.1 + 8, 1);
  }
#undef ROW
}

int main(int argc, char **argv) {
  int rounds = 3;
  const char *markdown = NULL;
  char *args[16] = {NULL};
  int nargs = 1;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) rounds = atoi(argv[++i]);
    else if (strcmp(argv[i], "--markdown") == 0 && i + 1 < argc) markdown = argv[++i];
    else if ((strcmp(argv[i], "--scale") == 0 || strcmp(argv[i], "--reps") == 0 ||
              strcmp(argv[i], "--only") == 0) && i + 1 < argc && nargs < 11) {
      args[nargs++] = argv[i];
      args[nargs++] = argv[++i];
    } else {
      fprintf(stderr,
              "usage: %s [--rounds N] [--scale F] [--reps N] [--only shapes] [--markdown FILE]\n",
              argv[0]);
      return 1;
    }
  }
  if (rounds < 1 || rounds > MAX_ROUNDS) {
    fprintf(stderr, "bench-driver: --rounds must be 1..%d\n", MAX_ROUNDS);
    return 1;
  }
  char dir[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
  if (n <= 0) return 1;
  dir[n] = '\0';
  *strrchr(dir, '/') = '\0';
  if (BENCH_SHIM_PATH[0] == '\0' || access(BENCH_SHIM_PATH, R_OK) != 0) g_allocs[1].ok = 0;

  /* Each group of shapes runs in a fresh process, so no shape inherits another's heap (glibc,
   * for one, grows a block in place into the space a freed burst left behind). */
  static char *groups[] = {"burst", "hot", "batch", "grow", "prodcons"};
  int ngroups = sizeof groups / sizeof *groups, user_only = 0;
  for (int i = 1; i < nargs; i++) user_only |= strcmp(args[i], "--only") == 0;
  int failed = 0;
  for (int r = 0; r < rounds; r++)
    for (int g = 0; g < (user_only ? 1 : ngroups); g++)
      for (int a = 0; a < g_nallocs; a++) {
        if (!g_allocs[a].ok) continue;
        fprintf(stderr, "bench-driver: round %d/%d: %s %s\n", r + 1, rounds, g_allocs[a].label,
                user_only ? "" : groups[g]);
        if (!user_only) {
          args[nargs] = "--only";
          args[nargs + 1] = groups[g];
        }
        if (run_one(a, dir, args) != 0) {
          g_allocs[a].ok = 0;
          failed = 1;
        }
        args[nargs] = NULL;
      }
  print_table(stdout, 0);
  print_targets(stdout, 0);
  if (markdown != NULL) {
    FILE *out = fopen(markdown, "w");
    if (out == NULL) {
      perror(markdown);
      return 1;
    }
    print_table(out, 1);
    print_targets(out, 1);
    fclose(out);
  }
  return failed;
}
