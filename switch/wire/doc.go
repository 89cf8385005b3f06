// Package wire is dienbao's protocol, shared by the switch and the client.
//
// Transport: QUIC v1, ALPN "dienbao/1", TLS 1.3 with client certificates,
// no 0-RTT. Identity is the client certificate; nothing in a frame names who
// is speaking.
//
// Frames. Every message is one frame:
//
//	uint32 length (big-endian, of what follows) | uint8 version (1) | uint8 type | CBOR payload
//
// The length is checked against a maximum before anything is read, the
// payload is decoded by fxamacker/cbor with limits on nesting, array and map
// sizes, duplicate keys and indefinite lengths refused, and unknown fields
// rejected. Telegram bodies never travel inside a frame: a frame that
// announces a body (File, Deliver) is followed on the same stream by exactly
// the announced number of raw bytes, so bodies stream and are bounded by the
// body limit, not the frame limit.
//
// Streams.
//   - Requests: the client opens a bidirectional stream per request, writes
//     one request frame (plus bodies), and reads one reply (a reply frame or
//     an Error frame). Subscribe is the exception: its stream stays open and
//     carries Drained notices until either side closes it.
//   - Deliveries: the switch opens one bidirectional stream per precedence
//     (and one for receipts) on each subscribed session, with QUIC stream
//     urgency FLASH=0 ... ROUTINE=3, so a FLASH never waits behind a ROUTINE
//     body on the wire. It writes Deliver (+ body) or Receipt frames; the
//     client answers with Ack on the same stream once it has stored the
//     item durably. One Ack may name up to MaxAcksPerFrame items (Tag, then
//     More), all stored, in the order stored: the client library sends one
//     for what it read together. A frame naming any tag the switch did not
//     hand out on that stream is refused whole. For a telegram that fails
//     its end-to-end verification (package envelope) the client sends
//     Reject (tag, reason, detail) instead: not delivered, the sender told.
//
// Published end-to-end keys (e2e.go): AgencyKeysRequest → AgencyKeys,
// raw CA-signed key certificates and revocations the terminal checks.
//
// Audit requests (audit.go) are plain request/reply: AuditQuery →
// AuditEntries (a page that fits a frame; More says ask again), AuditExport
// → AuditLeaves (a page of stored leaves; an empty page ends the log),
// AuditCheckpoint → AuditCheckpoints, AuditProof → AuditBundle, and
// AuditConsistency → AuditProofHashes.
package wire
