// SIGTERM and SIGINT as a stop request that a thread blocks on instead of polling: the handler
// sets a flag and writes to an eventfd (both async-signal-safe). One per process.
#pragma once

namespace bpfchain::stop_signal {

// Installs the handlers for SIGTERM and SIGINT. Call once, before other threads start.
void install();
// Asks for a stop from inside the program, as a signal does.
void request();
// Returns once a stop was requested (at once if it already was).
void wait();

} // namespace bpfchain::stop_signal
