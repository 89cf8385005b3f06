// Package audit owns the formats of dienbao's verifiable audit log, the
// parts an auditor's tools rely on without trusting the switch:
//
//   - the leaf: each audit entry's canonical encoding, one line of JSON with
//     fixed field order ({"v":1,"index":…,"at":…,"event":…,…}), stored as is
//     and hashed as is;
//   - the tree: an RFC 6962 Merkle tree over the leaves in index order
//     (SHA-256, leaf hash over 0x00 || leaf, node hash over
//     0x01 || left || right), computed with github.com/transparency-dev/merkle;
//   - the checkpoint: a C2SP tlog-checkpoint (origin, size, root hash) as a
//     signed note (golang.org/x/mod/sumdb/note) under the switch's Ed25519
//     key, whose verifier key is a string note.NewVerifier accepts;
//   - the proof bundle: a checkpoint, its verifier key and, for each entry of
//     one telegram, the leaf and its inclusion proof, checkable offline;
//   - verification: recomputing the tree over a stream of leaves and
//     checking it against every checkpoint, naming the first entry that
//     does not match.
//
// The store appends entries and keeps the tree; this package has no I/O.
package audit
