// Package store owns dienbao's durable state in Badger: telegram headers and
// bodies, one queue per addressee agency, delivery state, delivery reports
// waiting for their sender, the sender-reference index that makes filing
// idempotent, and the audit log.
//
// Durability. Badger runs with SyncWrites on, checksums verified on every
// table and block read and on every value-log read. A single goroutine, the
// commit loop, is the only writer: it takes every operation that arrived
// while the previous commit was syncing, applies them to one transaction,
// commits (one fsync), and only then answers them, FLASH filings first. A
// caller's File or Ack returns after its writes are on disk; if the process
// dies before that, none of them is (Badger commits a transaction
// atomically). This is group commit: throughput scales with batch size
// instead of being capped by one fsync per telegram.
//
// Key layout (agency addresses never contain 0x00, so it ends them):
//
//	m<name>                                  counters: last queue, receipt and audit sequence
//	h<id:16>                                 telegram header (CBOR)
//	b<id:16><chunk:4>                        body, in 64 KiB chunks
//	d<id:16><addressee>                      delivery state for one addressee
//	q<agency>\0<rank:1><class:1><seq:8>      queue entry → telegram ID
//	Q<agency>\0<rank:1><class:1>             queue head: lowest sequence possibly present
//	r<agency>\0<seq:8>                       delivery report waiting for the sender agency
//	R<agency>\0                              receipt queue head
//	i<agency>\0<ref>                         sender reference → telegram ID
//	a<seq:8>                                 audit entry (CBOR)
//
// rank is 0 for FLASH through 3 for ROUTINE, so one agency's queues sort
// most urgent first; within a (rank, class) sub-queue, entries sort by a
// global sequence assigned in commit order, which is filing order. Readers
// never scan from the start of a prefix: every scan starts from a
// remembered head, because delivered entries linger as tombstones and a
// seek across them costs milliseconds once there are hundreds of thousands.
// Heads are persisted in the same transaction as the acknowledgement that
// advances them.
//
// Encryption at rest (sealed values, encrypted keys) is issue 4's work and
// is not in this package yet.
package store
