// The physical limit of the kernel interface: a raw pread loop over
// /proc/PID/pagemap for every user-space mapping of each pid (the ranges
// pagewalk walks), 64K entries (512 KiB) per pread, the maps read included.
// Compiled at run time by benchmarks/run.js with `cc -O2`.
//
//   pread_walk RUNS WARMUP PID [PID...]
//
// Prints one JSON object: the time and the CPU time (user + system) of each
// measured run (all pids), the entries read per run, the address space
// covered and VmHWM.
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (64 * 1024)

static uint64_t buffer[CHUNK];
static uint64_t sink;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

// Walks one pid; returns entries read, adds address space to *bytes.
static uint64_t walkPid(int pid, uint64_t *bytes) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/maps", pid);
  FILE *maps = fopen(path, "re");
  if (!maps) return 0;
  snprintf(path, sizeof path, "/proc/%d/pagemap", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    fclose(maps);
    return 0;
  }
  static char line[4096];
  uint64_t entries = 0;
  while (fgets(line, sizeof line, maps)) {
    // Lines longer than the buffer (long paths) continue without a '-'.
    char *dash = strchr(line, '-');
    if (!dash || line[0] == ' ') continue;
    uint64_t start = strtoull(line, NULL, 16);
    uint64_t end = strtoull(dash + 1, NULL, 16);
    size_t len = strlen(line);
    while (len && line[len - 1] != '\n' && fgets(line, sizeof line, maps)) len = strlen(line);
    if (start >= (UINT64_C(1) << 63) || end <= start) continue;  // [vsyscall]
    *bytes += end - start;
    uint64_t page = start >> 12, last = end >> 12;
    while (page < last) {
      size_t n = last - page < CHUNK ? (size_t)(last - page) : CHUNK;
      ssize_t got = pread(fd, buffer, n * 8, (off_t)(page * 8));
      if (got <= 0) break;
      entries += (uint64_t)got / 8;
      sink += buffer[0];
      page += (uint64_t)got / 8;
    }
  }
  close(fd);
  fclose(maps);
  return entries;
}

static double cpuMs(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static long vmHwmKb(void) {
  FILE *f = fopen("/proc/self/status", "re");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "VmHWM:", 6)) kb = strtol(line + 6, NULL, 10);
  if (f) fclose(f);
  return kb;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: pread_walk RUNS WARMUP PID...\n");
    return 2;
  }
  int runs = atoi(argv[1]);
  int warmup = atoi(argv[2]);
  long hwm0 = vmHwmKb();
  uint64_t entries = 0, bytes = 0;
  double *cpu = calloc((size_t)runs + 1, sizeof(double));
  printf("{\"timesMs\":[");
  for (int r = -warmup; r < runs; r++) {
    entries = 0;
    bytes = 0;
    double c0 = cpuMs();
    double t0 = now();
    for (int i = 3; i < argc; i++) entries += walkPid(atoi(argv[i]), &bytes);
    double t = now() - t0;
    if (r >= 0) {
      printf("%s%.4f", r ? "," : "", t);
      cpu[r] = cpuMs() - c0;
    }
  }
  printf("],\"cpuMs\":[");
  for (int r = 0; r < runs; r++) printf("%s%.4f", r ? "," : "", cpu[r]);
  printf("],\"entries\":%" PRIu64 ",\"addressBytes\":%" PRIu64 ",\"hwmBeforeKb\":%ld,\"hwmAfterKb\":%ld}\n",
         entries, bytes, hwm0, vmHwmKb());
  return sink == 42 ? 1 : 0;
}
