// Package group owns a replicated switch's consensus: the Raft group of
// switchd nodes that are one switch to everyone outside (go.etcd.io/raft/v3,
// the Raft of etcd, run as a library). It keeps each node's Raft log
// (logstore.go: a Badger folder of its own, every value sealed with the
// node's keyring), carries Raft's messages and snapshots between nodes
// over QUIC with mutual TLS and the post-quantum key exchange
// (transport.go), applies committed entries to the node's records
// (store.Replica), and tells the node when it leads with everything
// applied, so that it may serve (node.go).
//
// What is replicated is the store's commits: each is one entry, proposed
// by the leader's commit loop and answered only once a quorum holds it
// durably and the leader has applied it (store/replica.go). Everything an
// entry needs (IDs, times, audit entries, checkpoints and their
// signatures) was decided by the leader before proposing, so every node's
// records, and audit tree, are the same. In-flight deliveries are not
// replicated: a new leader hands out again what was not acknowledged,
// flagged possible duplicate.
//
// Raft's log is held in memory between compactions and compacted every
// SnapshotEvery entries or 64 MiB; a snapshot is only its index and
// membership. A follower too far behind for the log is sent the
// snapshot's message followed by the leader's records as they are now
// (store.Replica.WriteSnapshot); it loads the records, then gives Raft the
// message. Entries after the snapshot's index that the records already
// hold are applied again, which changes nothing (an entry sets and deletes
// records to the values they had after it).
package group
