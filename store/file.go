package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/switch/custody"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// Filing is a validated telegram ready to be stored. The header's ID and
// FiledAt are assigned by the store; OverdueAt, if the caller wants a
// speed-of-service check, is computed from SpeedTarget.
type Filing struct {
	Header telegram.Header
	Body   []byte
	Actor  string // the sender's identity, for the audit log
	// SpeedTarget is the precedence's speed-of-service target; zero means
	// no overdue check.
	SpeedTarget time.Duration
	// Sealed, for an end-to-end sealed telegram, is what the audit entry
	// of its filing says of the envelope ("sealed" and the digest of its
	// signed header), binding the log to what the sender signed.
	Sealed string
	// ContentDigest, for a sealed telegram, is the digest of the content
	// the sender signed: a refiling under the same reference is compared
	// by it instead of by the body (a resealed body differs in every byte).
	ContentDigest []byte
}

// FileResult is the outcome of a filing.
type FileResult struct {
	ID        telegram.ID
	Duplicate bool // the sender reference was already used; ID is the first filing's
}

// File stores f: the header, the body, one queue entry and one delivery
// state per addressee, the sender-reference index entry, and the audit
// records (filed, queued per addressee), all in one transaction. It
// returns after that transaction is fsynced. If the sender reference was
// used before, it stores nothing and returns the earlier ID.
func (s *Store) File(f *Filing) (FileResult, error) {
	res, errs := s.FileBatch([]*Filing{f})
	return res[0], errs[0]
}

// FileBatch files several telegrams, each exactly as File does (each in
// one transaction with its own records, most likely all in the same group
// commit), and returns when all are on disk. Results and errors are per
// filing, in order.
func (s *Store) FileBatch(fs []*Filing) ([]FileResult, []error) {
	res := make([]FileResult, len(fs))
	errs := make([]error, len(fs))
	ops := make([]*op, len(fs))
	for i, f := range fs {
		ops[i] = &op{prec: f.Header.Precedence, apply: func(c *commitCtx) error {
			r, err := c.file(f)
			res[i] = r
			return err
		}}
		s.submitAsync(ops[i])
	}
	for i, o := range ops {
		<-o.done
		errs[i] = o.err
	}
	return res, errs
}

func (c *commitCtx) file(f *Filing) (FileResult, error) {
	h := f.Header
	var digest []byte
	if h.Ref != "" {
		digest = contentDigest(f)
		v, err := c.s.get(c.txn.Txn, c.s.ks.refKey(h.From, h.Ref))
		switch {
		case err == nil:
			var id telegram.ID
			copy(id[:], v)
			// A reference filed before digests were kept (16 bytes) is
			// taken as the same telegram, as it always was.
			if len(v) == len(id)+len(digest) && !bytes.Equal(v[len(id):], digest) {
				return FileResult{}, fault.Errorf("store.file", fault.Invalid,
					"reference %q was already used for another telegram (%s) with different content; nothing was filed: give a new reference", h.Ref, id)
			}
			return FileResult{ID: id, Duplicate: true}, nil
		case !errors.Is(err, badger.ErrKeyNotFound):
			return FileResult{}, err
		}
	}
	h.FiledAt = unixUTC(c.now)
	if !h.DeliverAt.After(h.FiledAt) {
		h.DeliverAt = time.Time{} // its time has come already: queued at once
	}
	if f.SpeedTarget > 0 { // counted from when it may be delivered
		h.OverdueAt = h.FiledAt.Add(f.SpeedTarget)
		if !h.DeliverAt.IsZero() {
			h.OverdueAt = h.DeliverAt.Add(f.SpeedTarget)
		}
	}
	h.ID = c.s.ids.New(h.FiledAt)
	h.BodyLen = int64(len(f.Body))
	num, err := c.keep(&h, f.Body)
	if err != nil {
		return FileResult{}, err
	}
	if h.Ref != "" {
		if err := c.set(c.s.ks.refKey(h.From, h.Ref), append(h.ID[:], digest...)); err != nil {
			return FileResult{}, err
		}
	}
	if err := c.appendAudit(AuditEntry{Actor: f.Actor, Event: AuditFiled, ID: h.ID, From: h.From,
		Precedence: h.Precedence, Classification: h.Classification, Reason: f.Sealed}); err != nil {
		return FileResult{}, err
	}
	if err := c.dues(&h); err != nil {
		return FileResult{}, err
	}
	for _, a := range h.Addressees() {
		if err := c.take(&h, num, a); err != nil {
			return FileResult{}, err
		}
	}
	return FileResult{ID: h.ID}, nil
}

// keep writes a new telegram's number, header and body. Reads and checks
// must be done: from here on only writes.
func (c *commitCtx) keep(h *telegram.Header, body []byte) (uint64, error) {
	hb, err := encodeRecord(h)
	if err != nil {
		return 0, fault.E("store.file", fault.Internal, "encode header", err)
	}
	num, err := c.newNumber(h.ID)
	if err != nil {
		return 0, err
	}
	if err := c.set(headerKey(num), padRecord(hb)); err != nil {
		return 0, err
	}
	for n := 0; n*ChunkSize < len(body); n++ {
		end := min((n+1)*ChunkSize, len(body))
		if err := c.set(bodyKey(num, uint32(n)), padChunk(body[n*ChunkSize:end])); err != nil {
			return 0, err
		}
	}
	return num, nil
}

// dues writes a new telegram's deadlines: expiry, speed of service and
// deferred delivery.
func (c *commitCtx) dues(h *telegram.Header) error {
	for _, d := range []struct {
		kind byte
		at   time.Time
	}{{pExpiry, h.ExpiresAt}, {pOverdue, h.OverdueAt}, {pDeferral, h.DeliverAt}} {
		if d.at.IsZero() {
			continue
		}
		if err := c.set(c.s.ks.dueKey(d.kind, d.at, h.ID), h.ID[:]); err != nil {
			return err
		}
	}
	return nil
}

// take starts addressee a's copy of telegram h (number num) where custody
// says: in its queue, or in the deferred list until the delivery time.
func (c *commitCtx) take(h *telegram.Header, num uint64, a telegram.Address) error {
	if err := c.noteRemote(a); err != nil {
		return err
	}
	st, fx := custody.Filed(h.DeliverAt, unixUTC(c.now))
	c.st.qseq++
	q := SubQueue{Agency: a, Prec: h.Precedence, Class: h.Classification}
	if fx.To == custody.InQueue {
		if err := c.set(c.s.ks.queueKey(q, c.st.qseq), h.ID[:]); err != nil {
			return err
		}
		c.count(q, Counts{Waiting: 1})
		*c.events = append(*c.events, Event{Kind: EvQueued, Queue: q, Seq: c.st.qseq, ID: h.ID})
	} else if err := c.putIn(q, fx.To, c.st.qseq, h.ID, false); err != nil {
		return err
	}
	pending, err := encodeRecord(&DeliveryState{Seq: c.st.qseq, Deferred: st.Phase == custody.Deferred})
	if err != nil {
		return err
	}
	if err := c.set(c.s.ks.deliveryKey(num, h.ID, a), pending); err != nil {
		return err
	}
	for _, ae := range fx.Audit {
		if err := c.appendAudit(AuditEntry{Actor: ae.Actor, Event: ae.Event, ID: h.ID, From: h.From, To: a,
			Precedence: h.Precedence, Classification: h.Classification, Reason: ae.Reason}); err != nil {
			return err
		}
	}
	return nil
}

// contentDigest is what makes two filings with one reference the same
// telegram: addressees, precedence, classification, subject and body
// (SHA-256, kept sealed with the reference's index entry). Times are left
// out: a clerk who files again after a lost answer with "--expire 90m"
// files the same telegram, 90 minutes from a later now.
func contentDigest(f *Filing) []byte {
	h := sha256.New()
	hd := f.Header
	fmt.Fprintf(h, "%q %q %d %d %q\x00", hd.To, hd.Info, hd.Precedence, hd.Classification, hd.Subject)
	if f.ContentDigest != nil {
		h.Write([]byte("sealed content\x00"))
		h.Write(f.ContentDigest)
		return h.Sum(nil)
	}
	h.Write(f.Body)
	return h.Sum(nil)
}

// minChunkClass is the smallest size a stored body chunk is padded to.
const minChunkClass = 256

// chunkClass is the size a chunk of n bytes is stored as: the next power
// of two from 256 bytes to ChunkSize, so that the disk shows a body's size
// only to a power of two (and to 64 KiB by its chunk count), not to the
// byte. The padding is sealed with the chunk; the header's BodyLen says
// where the body ends.
func chunkClass(n int) int { return min(sizeClass(n), ChunkSize) }

// sizeClass is the next power of two from minChunkClass at or above n.
func sizeClass(n int) int {
	c := minChunkClass
	for c < n {
		c *= 2
	}
	return c
}

// padChunk returns b padded with zeros to its chunk class.
func padChunk(b []byte) []byte {
	c := chunkClass(len(b))
	if c == len(b) {
		return b
	}
	out := make([]byte, c)
	copy(out, b)
	return out
}
