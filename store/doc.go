// Package store owns dienbao's durable state in Badger: telegram headers and
// bodies, one queue per addressee agency, delivery state, delivery reports
// waiting for their sender, the sender-reference index that makes filing
// idempotent, and the audit log with its Merkle tree and signed checkpoints
// (kept by store/auditlog through the store's transactions, audittxn.go).
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
// Lanes. The commit loop takes its work from three lanes (commit.go).
// FLASH work has its own: a commit with FLASH work carries nothing newer,
// and a FLASH that arrives while a batch is being applied takes the place
// of the rest of the batch. The lazy lane holds work that need not start a
// commit of its own: delivery attempts and routine acknowledgements of
// telegrams and delivery reports. It rides the next commit made for
// something else, or goes after 2 ms with nothing else, and goes before
// new filings; its callers still return only once it is on disk. At low
// load one fsync then does the work of three; under a flood of filings,
// deliveries are settled first. New filings are taken at most MaxFilings
// per commit.
//
// Key layout. No key carries plaintext that says who writes to whom: an
// agency address appears only as its tag (16 bytes of HMAC-SHA256 under the
// keyring's index key), and a sender reference likewise.
//
//	m<name>                                  counters (queue and receipt sequence, audit log size); the
//	                                         audit log's signing and verifier keys; the clean-stop marker
//	                                         and the suspect bound (handout.go)
//	h<id:16>                                 telegram header
//	b<id:16><chunk:4>                        body, in 64 KiB chunks
//	d<id:16><addressee tag>                  delivery state for one addressee
//	q<agency tag><rank:1><class:1><seq:8>    queue entry → telegram ID
//	Q<agency tag><rank:1><class:1>           queue head: lowest sequence possibly present
//	r<agency tag><seq:8>                     delivery report waiting for the sender agency
//	R<agency tag>                            receipt queue head
//	i<agency tag><reference tag>             sender reference → telegram ID
//	p<agency tag><seq:8>                     parked for an operator → telegram ID
//	w<agency tag><seq:8>, W<agency tag>      held by an operator → telegram ID; the agency is held
//	v<agency tag><seq:8>                     deferred until its delivery time → telegram ID
//	D<agency tag><rank:1><class:1>           a sub-queue's figures for operators (counts.go)
//	U<agency tag>                            the agency has had a terminal receiving (empty; handout.go)
//	x<unix ns:8><id:16>, o<unix ns:8><id:16> expiry and speed-of-service deadlines (empty)
//	e<unix ns:8><id:16>                      delivery time of a deferred telegram (empty)
//	a<index:8>                               audit entry: its leaf (canonical JSON, package audit)
//	A<id:16><index:8>, Y<agency tag><index:8>  audit entries of a telegram, naming an agency (empty)
//	n<level:1><group:8>                      audit tree: 64 perfect-subtree hashes of one level
//	c<size:8>                                signed checkpoint of the audit log at that size
//	                                         (a, A, Y, n, c: store/auditlog's)
//
// What the disk still shows without the keys (issue 15, finding 10, not
// yet closed; the values are sealed, the keys are not):
//
//   - q and Q keys: each waiting telegram's precedence rank and
//     classification (one byte each), per addressee tag, and the global
//     queue sequence (so the order of filings across agencies);
//   - h, b, d, A keys: telegram IDs, which are ULIDs: the filing time to
//     the millisecond; d keys join each ID to its addressees' tags and stay
//     after delivery; A keys join it to its audit entries;
//   - b keys and sealed lengths: each body's size to 64 KiB by the chunk
//     count, and the last chunk's to a power of two (chunks are padded to
//     one, from 256 bytes: file.go); a header's sealed length still
//     follows its subject, reference and addressee list;
//   - x, o, e keys: expiry, speed-of-service and delivery times, to the
//     nanosecond, with the telegram's ID;
//   - D, w, p, v, U, W, r, R keys: per agency tag, that it has figures,
//     held, parked or deferred entries, receipts, and has received;
//   - Y keys and the a keys' count: how many audit entries name each
//     agency tag, and the log's size.
//
// Tags are 128-bit HMACs under the keyring's index key: the same agency
// is the same tag everywhere, so the traffic's shape between unnamed
// parties shows. Closing the rest means deriving queue, index and
// deadline keys under the index key, and a format version to migrate the
// stores written before.
//
// Sealing. Every value is sealed by the keyring (crypto.Keyring: AEAD bound
// to the storage key and the data key's ID); the deadline, audit index,
// receiving and clean-stop markers are empty.
//
// Outside the Badger folder, beside the keyring, the store keeps a copy of
// its latest checkpoint (lastcheckpoint.go). Space: value-log files are
// small and garbage-collected by Reclaim (reclaim.go); tables are checked
// before Badger opens them (tables.go), and so are the write-ahead and
// value-log files: a damaged write-ahead log is refused, a damaged value
// log repaired past the damage (logcheck.go).
//
// The audit log. Entries are appended in the commit that makes the change
// they record; each is a leaf of an RFC 6962 tree (tree.go explains how its
// hashes are kept), and checkpoints of the tree are signed in the commit
// loop (checkpoint.go). Entry times come from the commit loop's clock, held
// monotonic across restarts, so a time range is a binary search.
//
// Why opaque keys rather than Badger's own encryption. Badger can encrypt
// its files (keys included), but its compaction then keeps an encrypted
// copy of every block of every table it is building, in up to eight
// builders per compaction plus a pool of allocators that keep their largest
// buffers. Measured with 1,000,000 telegrams queued, the live heap reached
// 238-340 MiB whatever the table and memtable sizes, and the switch was
// OOM-killed in a 256 MiB memory cgroup: encryption by Badger and the
// bounded-memory promise cannot both hold on Badger v4.9. With opaque keys
// and sealed values, no body, subject, reference or agency address is on
// disk in plaintext. What remains visible to someone holding the disk but
// not the keys is the shape of the traffic between tags: how many entries
// each tag's queues hold, and (through Badger's commit versions) which
// tags were written in the same transaction. That is a pattern between
// unnamed parties; naming them needs the index key.
//
// rank is 0 for FLASH through 3 for ROUTINE, so one agency's queues sort
// most urgent first; within a (rank, class) sub-queue, entries sort by a
// global sequence assigned in commit order, which is filing order. Readers
// never scan from the start of a prefix: every scan starts from a
// remembered head, because delivered entries linger as tombstones and a
// seek across them costs milliseconds once there are hundreds of thousands.
// Heads are persisted in the same transaction as the acknowledgement that
// advances them.
package store
