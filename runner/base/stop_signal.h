// stop_signal: what SIGINT and SIGTERM ask of a run.
//   level 0  run on;
//   level 1  (first signal) take no new batch; let the batches in flight commit; exit 3;
//   level 2  (second signal) also cancel the statements in flight, which roll back; exit 3.
// The handler only bumps an atomic counter (async-signal-safe); the run's main thread watches
// the level and does the cancelling.
#pragma once

namespace pgxform {

void install_stop_handlers();
int stop_level();
void request_stop();  // what a signal does, callable from tests
void reset_stop();

}  // namespace pgxform
