package client

import (
	"context"
	"io"
	"time"

	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

// Retrieve gets a copy of a telegram from the switch's custody or its
// journal: the sender's own, one delivered to this agency, or any (an
// auditor), up to the certificate's clearance. A copy is not a delivery:
// nothing is acknowledged, and it is never to be stored as one.
func (c *Client) Retrieve(ctx context.Context, id telegram.ID) (telegram.Header, []byte, error) {
	var r wire.Retrieved
	str, err := c.conn.OpenStreamSync(ctx)
	if err != nil {
		return r.Header, nil, c.closeErr(err)
	}
	defer str.CancelRead(0)
	if err := wire.WriteFrame(str, wire.TRetrieve, wire.RetrieveRequest{ID: id}); err != nil {
		return r.Header, nil, c.closeErr(err)
	}
	str.Close()
	if err := wire.ReadExpect(str, c.MaxFrame, wire.TRetrieved, &r); err != nil {
		return r.Header, nil, c.closeErr(err)
	}
	if r.Header.ID != id || r.Header.BodyLen < 0 || r.Header.BodyLen > c.MaxBody {
		return r.Header, nil, fault.Errorf("retrieve", fault.Invalid, "the switch answered with telegram %s of %d bytes for %s", r.Header.ID, r.Header.BodyLen, id)
	}
	body := make([]byte, r.Header.BodyLen)
	if _, err := io.ReadFull(str, body); err != nil {
		return r.Header, nil, c.closeErr(fault.E("retrieve", fault.Unavailable, "the copy was cut short", err))
	}
	if r.Header.Sealed && c.Seals() {
		// The switch keeps the sealed form; this terminal's agency (the
		// sender's or an addressee's) holds a key it was sealed for.
		d := Delivery{Header: r.Header, Body: body}
		if err := c.open(ctx, &d); err != nil {
			return r.Header, nil, fault.E("retrieve", fault.Integrity, "the copy does not verify or open", err)
		}
		return d.Header, d.Body, nil
	}
	return r.Header, body, nil
}

// Resend asks the switch to send a delivered telegram again, to one
// addressee (to) or every addressee it was delivered to, flagged possible
// duplicate: the sender's terminals and operators may.
func (c *Client) Resend(ctx context.Context, id telegram.ID, to telegram.Address, reason string) (wire.Resent, error) {
	var r wire.Resent
	err := c.request(ctx, wire.TResend, wire.ResendRequest{ID: id, To: to, Reason: reason}, wire.TResent, &r)
	return r, err
}

// Journal lists one page of the telegrams an agency sent or was sent,
// newest filing first (header fields only).
func (c *Client) Journal(ctx context.Context, q wire.JournalQuery) (wire.JournalPage, error) {
	var r wire.JournalPage
	err := c.request(ctx, wire.TJournal, q, wire.TJournaled, &r)
	return r, err
}

// AuditArchive asks the switch to move the audit entries older than
// olderThan (nil: its configured age) out of its store into archive files
// now (auditors).
func (c *Client) AuditArchive(ctx context.Context, olderThan *time.Duration) (wire.AuditArchived, error) {
	var r wire.AuditArchived
	err := c.request(ctx, wire.TAuditArchive, wire.AuditArchiveRequest{OlderThan: olderThan}, wire.TAuditArchived, &r)
	return r, err
}
