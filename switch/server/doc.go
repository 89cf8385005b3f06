// Package server is the switch's network edge: the QUIC listener, one
// session per authenticated connection, the routes table and the request
// handlers, and the delivery streams. What goes out next, what is in
// flight, what an acknowledgement or a timer does to custody, is the
// switchboard's (switch/switchboard): a subscribed session takes a seat
// there, writes on its precedence streams what the seat hands out and
// clears, and reports writes and acknowledgements back.
//
// Identity comes only from the verified client certificate (certs.IdentityOf);
// no request field can name a sender. TLS 1.3 only, client certificates
// required and verified against the network CA, 0-RTT off, session tickets
// off (a resumed session would skip certificate checks). The chain is
// checked in VerifyConnection rather than by crypto/tls, so that a refused
// handshake is audited with its reason and remote address (handshake.go).
//
// The audit log's requests (audit.go) apply the role rules written at the
// top of that file: auditors see everything, terminals their own agency's
// entries, operators entries without telegram metadata; every refusal is
// audited. The switch signs a checkpoint of the log at start, at stop, every
// CheckpointInterval when the log has grown, and on request.
//
// Streams, per subscribed session: one bidirectional stream per precedence,
// opened by the switch on first use with QUIC urgency FLASH=0 ... ROUTINE=3
// (receipts share urgency 0; they are tiny), so quic-go's scheduler always
// sends pending FLASH bytes before ROUTINE bytes. Each precedence has a
// window of unacknowledged deliveries; the scheduler never hands a lower
// precedence while a higher one is waiting (see switch/schedule).
package server
