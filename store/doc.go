// Package store owns dienbao's durable state in Badger: telegram headers and
// bodies (kept after settlement for the journal's retention: journal.go),
// one queue per addressee agency, delivery state, delivery reports
// waiting for their sender, the sender-reference index that makes filing
// idempotent, and the audit log with its Merkle tree and signed checkpoints
// (kept by store/auditlog through the store's transactions, audittxn.go).
//
// Durability. Badger runs with SyncWrites on, checksums verified on every
// block and value-log read (whole tables: tables.go and scrub.go). A
// single goroutine, the commit loop, is the only writer: it takes every
// operation that arrived while the previous commit was syncing, applies
// them to one transaction, commits (one fsync), and only then answers
// them, FLASH filings first. A caller's File or Ack returns after its
// writes are on disk; if the process dies before that, none of them is
// (Badger commits a transaction atomically). This is group commit:
// throughput scales with batch size instead of being capped by one fsync
// per telegram.
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
// Key layout (format 3; FormatVersion, format.go). No key carries
// plaintext, a telegram ID, a precedence or a classification: an agency
// address appears only as its tag (16 bytes of HMAC-SHA256 under the
// keyring's index key), and so does a sender reference, a telegram (one
// tag for its filing number and audit index, another for each timer), and
// a sub-queue (agency tag, precedence and classification together). A
// telegram's own records are keyed by its filing number (number.go): a
// count the store keeps, so that Badger receives them in key order.
//
//	m<name>                                  counters (queue and receipt sequence, filings, audit log size);
//	                                         the format version; the audit log's signing and verifier keys;
//	                                         the clean-stop marker and the suspect bound (handout.go);
//	                                         the restored bound (restore.go);
//	                                         the settings an operator changes at run time (settings.go);
//	                                         on a node of a group, the group's index key and the index of the
//	                                         last group entry applied (replica.go)
//	N<telegram tag>                          the telegram's filing number
//	t<number:8>                              telegram header, padded to a power of two from 256 bytes
//	u<number:8><chunk:4>                     body, in 64 KiB chunks, the last padded likewise
//	s<number:8><addressee tag:8>             delivery state for one addressee (8 bytes of a tag of the ID and
//	                                         the agency's tag: not the agency's tag, so it joins no agency)
//	k<sub-queue tag><seq:8>                  queue entry → telegram ID
//	K<sub-queue tag>                         queue head: lowest sequence possibly present
//	F<sub-queue tag>                         a sub-queue's figures for operators (counts.go)
//	r<agency tag><seq:8>                     delivery report waiting for the sender agency
//	R<agency tag>                            receipt queue head
//	i<agency tag><reference tag>             sender reference → telegram ID and content digest
//	p<agency tag><seq:8>                     parked for an operator → telegram ID
//	w<agency tag><seq:8>, W<agency tag>      held by an operator → telegram ID; the agency is held
//	v<agency tag><seq:8>                     deferred until its delivery time → telegram ID
//	U<agency tag>                            the agency has had a terminal receiving (empty; handout.go)
//	L<peer tag>                              the last link sequence number committed from a peer switch (relay.go)
//	G<agency tag>, l<agency tag>             an agency served elsewhere that had copies here (remote.go); an agency
//	                                         the directory has listed (agencies.go): its address, sealed
//	X<unix ns:8><timer tag>                  expiry → telegram ID
//	O<unix ns:8><timer tag>                  speed-of-service deadline → telegram ID
//	T<unix ns:8><timer tag>                  delivery time of a deferred telegram → telegram ID
//	P<unix ns:8><timer tag>                  end of a settled telegram's retention (journal.go) → telegram ID
//	a<index:8>                               audit entry: its leaf (canonical JSON, package audit)
//	I<telegram tag><batch tag:8>             indices of a telegram's audit entries, one record per commit
//	Y<agency tag><first index:8>             indices of the audit entries naming an agency, one record
//	                                         per commit (store/auditlog/index.go)
//	n<level:1><group:8>                      audit tree: 64 perfect-subtree hashes of one level
//	c<size:8>                                signed checkpoint of the audit log at that size
//	                                         (a, I, Y, n, c: store/auditlog's)
//
// A store of format 1 (telegram IDs in h, b, d, x, o, e and A keys;
// precedence and classification in q, Q and D keys) or format 2 (a
// telegram's header, body and delivery states under random tags: H, B, S)
// is migrated at its first start by this version, resumably (format.go),
// and the migration is audited. TestDiskShowsNoMetadata dumps every key and value in every
// version Badger keeps, and every byte of every file, and finds no
// telegram ID or filing time, and no agency tag outside the per-agency
// records above.
//
// What the disk still shows without the keys (the values are sealed; the
// keys are opaque but not silent):
//
//   - Record counts and sizes: how many telegrams are stored (t), to how
//     many addressees each (s keys under its number), waiting
//     per sub-queue tag (k), held, parked, deferred or reported per agency
//     tag (w, p, v, r), filed with a reference per sender tag (i); each
//     body's size to 64 KiB by its chunk count and its last chunk's to a
//     power of two; each header's to a power of two (a header over 256
//     bytes shows a long subject or address list).
//   - Order: filing numbers, and queue, report and list sequences, are
//     global, assigned in commit order, so telegrams and entries of
//     different tags can be put in filing order (but not dated); audit
//     indexes likewise.
//   - Times in timer keys, to the nanosecond: expiries, deferred delivery
//     times, speed-of-service deadlines and the ends of retention (a
//     purge time is a settlement time plus the retention) (not joined to the telegram's
//     other records, but a deadline is the filing time plus its
//     precedence's target, so with the filing time known to within the
//     gap between targets its precedence shows).
//   - Per agency tag, in which commits it was named in the audit log (Y
//     keys carry the first index of each commit's record), for as long
//     as the log is kept. A telegram's index keys carry no index, so they
//     do not join it to agencies.
//   - Linkage through Badger's commit versions: Badger stores each key
//     with the version of the commit that wrote it, so records written
//     in one commit are linked. At low load a commit often holds one
//     telegram, and then its header, sub-queue, delivery and index tags
//     and its agencies' index keys are linked: who wrote to whom,
//     between unnamed tags. Hiding this needs a storage layer that does
//     not expose versions (Badger's own encryption: see below) or commits
//     stored as sealed records.
//   - The old keys a migration moved stay in the value-log files
//     until value-log GC rewrites them (the tables are rewritten at once:
//     format.go).
//
// Why filing numbers. Format 1's ID-keyed records were written in key
// order (IDs are ULIDs, filed in time order), so new traffic never
// overlapped the tables of a backlog and Badger's compaction left them
// alone; format 2 keyed them by random tags to hide filing times, and with
// a million telegrams queued compaction took about 45 % of the switch's
// CPU and throughput fell by more than half. Format 3's filing numbers
// give the order back without the times; only the small number index (N)
// lands at random (README, measured figures).
//
// Tags are deterministic: the same agency is the same tag everywhere and
// across restarts, so the traffic's shape between unnamed parties shows;
// naming them needs the index key.
//
// Sealing. Every value is sealed by the keyring (crypto.Keyring: AEAD bound
// to the storage key and the data key's ID); the receiving and clean-stop
// markers, and audit index keys of the form written before format 2, are
// empty.
//
// Outside the Badger folder, beside the keyring, the store keeps a copy of
// its latest checkpoint (lastcheckpoint.go). Space: value-log files are
// small and garbage-collected by Reclaim (reclaim.go); tables not checked
// before (a record beside the store folder keeps those that were) are checked
// before Badger opens them (tables.go), and so are the write-ahead and
// value-log files: a damaged write-ahead log is refused, a damaged value
// log repaired past the damage (logcheck.go); a background scrub checks
// every table again (scrub.go).
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
// and sealed values, no body, subject, reference, agency address,
// telegram ID, precedence or classification is on disk in plaintext. What
// remains visible to someone holding the disk but not the keys is listed
// above: the shape of the traffic between tags. That is a pattern between
// unnamed parties; naming them needs the index key.
//
// A sub-queue's tag hides its precedence and classification, so an
// agency's sub-queues do not sort together: readers name each of the 16
// (precedence, classification) sub-queues of an agency they want, most
// urgent first. Within a sub-queue, entries sort by a global sequence
// assigned in commit order, which is filing order. Readers
// never scan from the start of a prefix: every scan starts from a
// remembered head, because delivered entries linger as tombstones and a
// seek across them costs milliseconds once there are hundreds of thousands.
// Heads are persisted in the same transaction as the acknowledgement that
// advances them.
package store
