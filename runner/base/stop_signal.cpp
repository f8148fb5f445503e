#include "base/stop_signal.h"

#include <atomic>
#include <csignal>

namespace pgxform {

namespace {
std::atomic<int> g_level{0};
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler needs a lock-free atomic");

extern "C" void on_stop_signal(int) {
  g_level.fetch_add(1);
}
}  // namespace

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

int stop_level() {
  return g_level.load();
}
void request_stop() {
  g_level.fetch_add(1);
}
void reset_stop() {
  g_level.store(0);
}

}  // namespace pgxform
