// Runs a command end to end and reports, for each run, its wall time and the
// peak RSS of the whole process (wait4's ru_maxrss): how the `pagewalk smem`
// and Debian `smem` commands are compared. Compiled at run time by
// benchmarks/run.js with `cc -O2`.
//
//   exec_rusage RUNS WARMUP COMMAND [ARG...]
//
// The command's stdout goes to /dev/null; its stderr is passed through.
// Prints one JSON object: timesMs, cpuMs (the command's user + system time,
// every thread) and maxRssKb of each measured run and the bytes the command
// wrote on the last run.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: exec_rusage RUNS WARMUP COMMAND [ARG...]\n");
    return 2;
  }
  int runs = atoi(argv[1]);
  int warmup = atoi(argv[2]);
  char out[] = "/tmp/exec_rusage.XXXXXX";
  int outFd = mkstemp(out);
  if (outFd < 0) {
    perror("mkstemp");
    return 1;
  }
  unlink(out);
  double *times = calloc((size_t)runs + 1, sizeof(double));
  long *rss = calloc((size_t)runs + 1, sizeof(long));
  double *cpu = calloc((size_t)runs + 1, sizeof(double));
  long outputBytes = 0;
  for (int r = -warmup; r < runs; r++) {
    if (ftruncate(outFd, 0) || lseek(outFd, 0, SEEK_SET)) {
      perror("ftruncate");
      return 1;
    }
    double t0 = now();
    pid_t pid = fork();
    if (pid < 0) {
      perror("fork");
      return 1;
    }
    if (pid == 0) {
      dup2(outFd, 1);
      execvp(argv[3], argv + 3);
      perror(argv[3]);
      _exit(127);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) {
      perror("wait4");
      return 1;
    }
    double t = now() - t0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "exec_rusage: %s exited with status %d\n", argv[3], status);
      return 1;
    }
    struct stat st;
    outputBytes = fstat(outFd, &st) ? -1 : (long)st.st_size;
    if (r >= 0) {
      times[r] = t;
      rss[r] = ru.ru_maxrss;
      cpu[r] = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
    }
  }
  printf("{\"timesMs\":[");
  for (int r = 0; r < runs; r++) printf("%s%.4f", r ? "," : "", times[r]);
  printf("],\"cpuMs\":[");
  for (int r = 0; r < runs; r++) printf("%s%.4f", r ? "," : "", cpu[r]);
  printf("],\"maxRssKb\":[");
  for (int r = 0; r < runs; r++) printf("%s%ld", r ? "," : "", rss[r]);
  printf("],\"hwmBeforeKb\":-1,\"extra\":{\"outputBytes\":%ld}}\n", outputBytes);
  return 0;
}
