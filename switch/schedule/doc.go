// Package schedule decides what a terminal is handed next. It is the
// switch's precedence scheduler and holds no I/O of its own: queued entries
// come from a Loader (the store, or a slice in tests), and the caller tells
// it about new entries, acknowledgements and dropped sessions.
//
// Rules it enforces:
//
//   - Precedence is absolute. Serving a terminal, the scheduler looks at
//     FLASH, then IMMEDIATE, then PRIORITY, then ROUTINE, and serves a
//     precedence only when every more urgent one has nothing waiting and
//     nothing in flight to that terminal. A full window for the most urgent
//     waiting precedence means the terminal gets nothing rather than
//     something less urgent.
//   - Clearance. A terminal is offered only entries classified at or below
//     its clearance; entries above it are not waiting for that terminal and
//     stay queued for a cleared one.
//   - Filing order within a precedence: entries carry a global sequence
//     assigned at commit, and sub-queues of one precedence (one per
//     classification) are merged by it.
//   - Bounded memory. Each sub-queue keeps at most ReadAhead entries in
//     memory; the rest stay on disk and are read from a cursor, never from
//     the start of the queue.
//   - Heads. The lowest sequence that may still be present is tracked
//     exactly (everything below the cursor is buffered, in flight or gone),
//     so acknowledgements can persist it and a restart seeks straight to it.
package schedule
