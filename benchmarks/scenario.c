// Memory shapes for the pagewalk benchmarks. Compiled at run time by
// benchmarks/run.js with `cc -O2`.
//
//   scenario dense MIB                      every page of MIB MiB written
//   scenario sparse RESERVE_GIB RESIDENT_MIB  MAP_NORESERVE reservation with
//                                           RESIDENT_MIB spread across it
//   scenario maps COUNT                     COUNT one-page mappings (alternate
//                                           protections so they cannot merge)
//   scenario shared PROCS SHARED_MIB PRIVATE_MIB
//                                           PROCS processes (fork) mapping one
//                                           MAP_SHARED region, each with its
//                                           own private memory
//   scenario backends PROCS SHARED_MIB PRIVATE_MIB
//                                           the same, named apart: PostgreSQL's
//                                           shape (backends forked from one
//                                           postmaster reading shared buffers)
//   scenario stall MIB                      MIB MiB written, then times its own
//                                           mmap+touch+munmap in a loop: SIGUSR1
//                                           starts a new window, SIGUSR2 prints
//                                           "STALL worst_ns calls over_1ms
//                                           over_100us" for the window so far
//
// Prints "READY pid [pid...]" once every page is in place, then runs as a
// server does until killed: each process wakes every 5 ms, writes one page
// of memory it already has, and every fourth wake maps, touches and unmaps
// 64 KiB (an allocator's large block), so that it takes its own mmap lock
// for writing 50 times a second. The bench SIGSTOPs the processes for its
// "stopped" pass. Forked children die with the parent (PR_SET_PDEATHSIG).
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <unistd.h>

#define PAGE 4096UL
#define MIB (1024UL * 1024UL)

static void die(const char *what) {
  perror(what);
  exit(1);
}

static unsigned char *map(size_t bytes, int prot, int flags) {
  void *p = mmap(NULL, bytes, prot, flags, -1, 0);
  if (p == MAP_FAILED) die("mmap");
  // 4 KiB pages throughout, whatever the THP setting.
  madvise(p, bytes, MADV_NOHUGEPAGE);
  return p;
}

static void touch(volatile unsigned char *p, size_t bytes) {
  for (size_t off = 0; off < bytes; off += PAGE) p[off] = (unsigned char)(off / PAGE) | 1;
}

static unsigned long sink;
static void readAll(volatile unsigned char *p, size_t bytes) {
  for (size_t off = 0; off < bytes; off += PAGE) sink += p[off];
}

// A server's day: wake every 5 ms (each process at its own phase), write a
// byte of a page it already has, and every fourth wake map, touch and unmap
// 64 KiB. `mem`/`bytes`: memory of its own to write to (NULL: none).
static void serve(volatile unsigned char *mem, size_t bytes) {
  const struct timespec gap = {0, 5000000};
  struct timespec phase = {0, (long)(getpid() % 5) * 1000000L};
  nanosleep(&phase, NULL);
  size_t page = 0;
  for (unsigned long wake = 0;; wake++) {
    nanosleep(&gap, NULL);
    if (mem && bytes >= PAGE) {
      mem[page * PAGE] ^= 1;
      page = (page + 257) % (bytes / PAGE);
    }
    if (wake % 4 == 0) {
      unsigned char *p = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) die("mmap");
      p[0] = 1;
      if (munmap(p, 16 * PAGE)) die("munmap");
    }
  }
}

static volatile sig_atomic_t windowRequest;  // 1: new window, 2: report

static void onWindowSignal(int sig) { windowRequest = sig == SIGUSR1 ? 1 : 2; }

static uint64_t nowNs(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

// What an allocator does all day: mmap, first touch, munmap. Each needs the
// mmap lock for writing, so any reader holding it for reading (a
// smaps_rollup read, a pagemap read) shows up as this call's latency. The
// loop sleeps 200 us between calls so that it needs little CPU of its own.
static void stallLoop(void) {
  uint64_t worst = 0, calls = 0, over1ms = 0, over100us = 0;
  const struct timespec gap = {0, 200000};
  for (;;) {
    if (windowRequest) {
      if (windowRequest == 2)
        printf("STALL %llu %llu %llu %llu\n", (unsigned long long)worst, (unsigned long long)calls,
               (unsigned long long)over1ms, (unsigned long long)over100us);
      worst = calls = over1ms = over100us = 0;
      windowRequest = 0;
    }
    uint64_t t0 = nowNs();
    unsigned char *p = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die("mmap");
    p[0] = 1;
    if (munmap(p, 16 * PAGE)) die("munmap");
    uint64_t took = nowNs() - t0;
    calls++;
    if (took > worst) worst = took;
    if (took > 1000000) over1ms++;
    if (took > 100000) over100us++;
    nanosleep(&gap, NULL);
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: scenario dense|sparse|maps|shared|backends|stall ARGS\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IONBF, 0);
  const char *mode = argv[1];
  if (!strcmp(mode, "dense")) {
    size_t bytes = strtoul(argv[2], NULL, 10) * MIB;
    unsigned char *p = map(bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    touch(p, bytes);
    printf("READY %d\n", getpid());
    serve(p, bytes);
  }
  if (!strcmp(mode, "stall")) {
    // Before READY: the first SIGUSR1 may follow it at once.
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = onWindowSignal;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    size_t bytes = strtoul(argv[2], NULL, 10) * MIB;
    touch(map(bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS), bytes);
    printf("READY %d\n", getpid());
    stallLoop();
  }
  if (!strcmp(mode, "sparse") && argc >= 4) {
    size_t reserve = strtoul(argv[2], NULL, 10) * 1024UL * MIB;
    size_t resident = strtoul(argv[3], NULL, 10) * MIB;
    unsigned char *p = map(reserve, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
    // 64 islands of resident memory, evenly spread over the reservation.
    const size_t islands = 64;
    size_t island = resident / islands;
    size_t stride = reserve / islands;
    for (size_t i = 0; i < islands; i++) touch(p + i * stride, island);
    printf("READY %d\n", getpid());
    serve(p, island);
  }
  if (!strcmp(mode, "maps")) {
    size_t count = strtoul(argv[2], NULL, 10);
    unsigned char *p = map(count * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    touch(p, count * PAGE);
    for (size_t i = 1; i < count; i += 2)
      if (mprotect(p + i * PAGE, PAGE, PROT_READ)) die("mprotect (raise vm.max_map_count?)");
    printf("READY %d\n", getpid());
    serve(p, PAGE);  // the first page is writable
  }
  if ((!strcmp(mode, "shared") || !strcmp(mode, "backends")) && argc >= 5) {
    int procs = atoi(argv[2]);
    size_t shared = strtoul(argv[3], NULL, 10) * MIB;
    size_t priv = strtoul(argv[4], NULL, 10) * MIB;
    unsigned char *s = map(shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
    touch(s, shared);
    int fds[2];
    if (pipe(fds)) die("pipe");
    pid_t parent = getpid();
    pid_t *pids = calloc((size_t)procs, sizeof(pid_t));
    pids[0] = parent;
    for (int i = 1; i < procs; i++) {
      pid_t c = fork();
      if (c < 0) die("fork");
      if (c == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(0);
        close(fds[0]);
        // fork copies no page tables of shared mappings: fault them in
        // (MADV_POPULATE_READ, Linux 5.14+, does it without a fault per
        // 16 pages; the loop is the fallback).
        if (madvise(s, shared, 22 /* MADV_POPULATE_READ */)) readAll(s, shared);
        unsigned char *own = map(priv, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
        touch(own, priv);
        char ok = 1;
        if (write(fds[1], &ok, 1) != 1) _exit(1);
        serve(own, priv);
      }
      pids[i] = c;
    }
    close(fds[1]);
    unsigned char *own = map(priv, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    touch(own, priv);
    for (int i = 1; i < procs; i++) {
      char ok;
      if (read(fds[0], &ok, 1) != 1) die("child setup");
    }
    printf("READY");
    for (int i = 0; i < procs; i++) printf(" %d", pids[i]);
    printf("\n");
    serve(own, priv);
  }
  fprintf(stderr, "scenario: bad arguments\n");
  return 2;
}
