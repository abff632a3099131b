// A second thread for work that one thread can also do alone: walks,
// tallies and kpage reads split their work over two when they may
// (extraThreadsAllowed()), and do it all on the calling thread when the
// kernel refuses the thread (EAGAIN: the caller's pids cgroup, RLIMIT_NPROC
// or threads-max at its limit). A refused thread never fails a measurement.
#pragma once

#include <system_error>
#include <thread>
#include <utility>

namespace pagewalk {

// fn started on a new thread, or a thread that is not joinable when none
// could be created (fn then has not run: the caller does its share).
template <typename Fn>
std::thread tryStartThread(Fn&& fn) {
  try {
    return std::thread(std::forward<Fn>(fn));
  } catch (const std::system_error&) {
    return std::thread();
  }
}

}  // namespace pagewalk
