// Package switchboard connects the store's queues to the terminals that
// take telegrams from them: it owns, per agency with a terminal attached,
// the scheduler (what goes out next), the hand-outs in flight with their
// delivery tags, the check before each hand-out, acknowledgements, and
// the custody timers (deferred delivery, expiry, speed of service). What a
// hand-out, an acknowledgement, a timer or an operator action does to a
// telegram is decided by switch/custody and applied by the store; the
// switchboard decides when, and keeps what is in flight (which is never
// stored) so that custody is told about it.
//
// It knows nothing of QUIC: switch/server attaches a Seat per subscribed
// session, asks it for the next hand-out, writes what Prepare returns on
// its streams, and reports writes and acknowledgements back.
//
// What is in flight is known here only. Operator actions and expiry that
// must leave a delivery in flight alone take a snapshot of the telegram's
// hand-outs with the agencies' hand-outs paused (a gate per agency), and
// pass it to the store, which reads it inside its commit: no callback
// from the commit loop into the schedulers.
package switchboard
