package store

import (
	"strconv"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/store/auditlog"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// The audit log lives in store/auditlog, behind a small transaction
// interface (audittxn.go); this file gives it the store's commits and
// snapshots and keeps its size and checkpoint bookkeeping among the
// store's counters.

// AuditEntry is one audit record (see package audit).
type AuditEntry = audit.Entry

// AuditQuery selects audit entries (see auditlog.Query).
type AuditQuery = auditlog.Query

// MaxQueryLimit bounds one page of a query.
const MaxQueryLimit = auditlog.MaxQueryLimit

// SignedCheckpoint is a checkpoint as the switch signed it.
type SignedCheckpoint = auditlog.Checkpoint

// Audit events, as package audit names them.
const (
	AuditFiled           = audit.Filed
	AuditRefused         = audit.Refused
	AuditQueued          = audit.Queued
	AuditAttempt         = audit.Attempt
	AuditDelivered       = audit.Delivered
	AuditExpired         = audit.Expired
	AuditParked          = audit.Parked
	AuditOverdue         = audit.Overdue
	AuditReportQueued    = audit.ReportQueued
	AuditReportDelivered = audit.ReportDelivered
	AuditSecurity        = audit.Security
	AuditIntegrity       = audit.Integrity
	AuditKeyRotation     = audit.KeyRotation
	AuditSwitchStart     = audit.SwitchStart
	AuditSwitchStop      = audit.SwitchStop
	AuditRestored        = audit.Restored
	AuditDeferred        = audit.Deferred
	AuditRetrieved       = audit.Retrieved
	AuditResent          = audit.Resent
	AuditPurged          = audit.Purged
	AuditLink            = audit.Link
)

// appendAudit writes e as the next audit entry in c's transaction: made
// safe and bounded (audit.Bounded: nothing from outside can make an entry
// large or unprintable), its index and time assigned here.
func (c *commitCtx) appendAudit(e AuditEntry) error { return c.appendEntry(audit.Bounded(e)) }

// appendEntry writes e, as it is, as the next entry.
func (c *commitCtx) appendEntry(e AuditEntry) error {
	e.Index = c.st.aseq
	e.At = unixUTC(c.now)
	if err := c.s.alog.Append(c.audit(), e); err != nil {
		return err
	}
	c.st.aseq++
	return nil
}

// openAudit opens the audit log at Open, or starts a new one.
func (s *Store) openAudit() error {
	tags := auditlog.Tags{Agency: s.ks.agencyTag, Telegram: s.ks.telegramTag, Batch: s.ks.auditBatchTag}
	err := s.db.View(func(txn *badger.Txn) error {
		l, o, err := auditlog.Open(auditTxn{s, wtxn{Txn: txn}}, s.st.aseq, metaKey, tags)
		if err != nil {
			return err
		}
		s.alog, s.altered = l, o.Altered
		if !o.LastAt.IsZero() {
			s.st.at = o.LastAt.UnixNano()
		}
		s.st.cpSize, s.st.hasCP = o.Checkpoint, o.HasCheckpoint
		return nil
	})
	if err != nil || s.alog != nil {
		return err
	}
	if s.opts.Replicate != nil {
		// A group's first leader makes the log's key for the whole group.
		txn := s.db.NewTransaction(true)
		defer txn.Discard()
		w := &writes{}
		if s.alog, err = auditlog.NewKey(auditTxn{s, wtxn{txn, w}}, s.opts.Origin, metaKey, tags); err != nil {
			return err
		}
		return s.replicate(w)
	}
	return s.db.Update(func(txn *badger.Txn) error {
		s.alog, err = auditlog.NewKey(auditTxn{s, wtxn{Txn: txn}}, s.opts.Origin, metaKey, tags)
		return err
	})
}

// Record appends one audit entry on its own (refusals, security events,
// start and stop). It returns after the entry is on disk.
func (s *Store) Record(e AuditEntry) error {
	return s.submit(&op{apply: func(c *commitCtx) error { return c.appendAudit(e) }})
}

// RecordAsync appends one audit entry with the next group commit, without
// waiting for it (security events met on a hot path, such as handshakes).
func (s *Store) RecordAsync(e AuditEntry) {
	s.submitAsync(&op{apply: func(c *commitCtx) error { return c.appendAudit(e) }})
}

// LastTimeAtOpen is the time of the latest audit entry recorded before
// this store was opened (zero for an empty log). No entry's time is ever
// earlier than the one before it.
func (s *Store) LastTimeAtOpen() time.Time {
	if s.openedAt == 0 {
		return time.Time{}
	}
	return time.Unix(0, s.openedAt).UTC()
}

// AuditSize is the number of entries in the audit log.
func (s *Store) AuditSize() uint64 {
	var n uint64
	s.view(func(txn *badger.Txn) error {
		n, _ = s.getU64(txn, metaKey("aseq"))
		return nil
	})
	return n
}

// Audit returns up to limit audit entries with index >= from, oldest
// first.
func (s *Store) Audit(from uint64, limit int) ([]AuditEntry, error) {
	var out []AuditEntry
	err := s.AuditLeaves(from, limit, func(index uint64, leaf []byte) error {
		e, err := audit.ParseLeaf(leaf)
		if err != nil {
			return fault.E("store.audit", fault.Integrity, "audit entry "+itoa(index)+" is malformed", err)
		}
		out = append(out, e)
		return nil
	})
	return out, err
}

// AuditLeaves calls fn with up to limit stored leaves from index from on,
// in index order, as stored (fn must not keep leaf). A leaf that fails its
// integrity check ends the walk with an Integrity error naming its index.
func (s *Store) AuditLeaves(from uint64, limit int, fn func(index uint64, leaf []byte) error) error {
	return s.viewAudit(func(tx auditlog.Txn) error { return auditlog.Leaves(tx, from, limit, fn) })
}

// QueryAudit returns the entries q selects, up to q.Limit, in the order
// asked (see auditlog.Log.Select).
func (s *Store) QueryAudit(q AuditQuery) ([]AuditEntry, error) {
	out, _, err := s.QueryAuditPage(q)
	return out, err
}

// QueryAuditPage is QueryAudit for a query with a scan budget (q.Scan):
// resume, if not 0, is where it stopped for the budget.
func (s *Store) QueryAuditPage(q AuditQuery) (out []AuditEntry, resume uint64, err error) {
	err = s.view(func(txn *badger.Txn) error {
		size, err := s.getU64(txn, metaKey("aseq"))
		if err != nil {
			return err
		}
		out, resume, err = s.alog.SelectPage(auditTxn{s, wtxn{Txn: txn}}, size, q)
		return err
	})
	return out, resume, err
}

// VerifierKey is the key that checks the switch's checkpoints, in the form
// golang.org/x/mod/sumdb/note.NewVerifier accepts. Publish it.
func (s *Store) VerifierKey() string { return s.alog.VerifierKey() }

// Checkpoint returns a signed checkpoint of the whole log as it stands:
// the latest one if nothing was appended since, else a new one, signed and
// stored before it is returned.
func (s *Store) Checkpoint() (SignedCheckpoint, error) {
	var cp SignedCheckpoint
	err := s.submit(&op{prec: telegram.Flash, apply: func(c *commitCtx) error {
		size := c.st.aseq
		if c.st.hasCP && c.st.cpSize == size {
			stored, ok, err := auditlog.Stored(c.audit(), size)
			if err != nil {
				return err
			}
			if ok {
				cp = stored
				return nil
			}
		}
		signed, err := c.s.alog.Sign(c.audit(), size)
		if err != nil {
			return err
		}
		c.st.cpSize, c.st.hasCP = size, true
		cp = signed
		return nil
	}})
	if err == nil {
		err = s.copyCheckpoint(cp)
	}
	return cp, err
}

// Checkpoints calls fn with every stored checkpoint of size greater than
// after (all of them when after is 0), smallest first, until fn fails.
func (s *Store) Checkpoints(after uint64, fn func(SignedCheckpoint) error) error {
	return s.viewAudit(func(tx auditlog.Txn) error { return auditlog.Checkpoints(tx, after, fn) })
}

// LatestCheckpoint returns the latest signed checkpoint (ok false if none
// was ever signed).
func (s *Store) LatestCheckpoint() (cp SignedCheckpoint, ok bool, err error) {
	err = s.viewAudit(func(tx auditlog.Txn) (err error) {
		cp, ok, err = auditlog.Latest(tx)
		return err
	})
	return cp, ok, err
}

// Proof builds the proof bundle for a telegram's audit entries against a
// checkpoint that covers them all: checkpoint is asked for one of at least
// the given size (it may sign one, or refuse).
func (s *Store) Proof(id telegram.ID, checkpoint func(size uint64) (SignedCheckpoint, error)) (audit.Bundle, error) {
	b := audit.Bundle{ID: id, VerifierKey: s.VerifierKey()}
	var indices []uint64
	err := s.viewAudit(func(tx auditlog.Txn) (err error) {
		indices, err = s.alog.EntriesOf(tx, id)
		return err
	})
	if err != nil {
		return b, err
	}
	if len(indices) == 0 {
		return b, fault.Errorf("audit.proof", fault.NotExist, "no audit entry for telegram %s", id)
	}
	cp, err := checkpoint(indices[len(indices)-1] + 1)
	if err != nil {
		return b, err
	}
	b.Checkpoint = string(cp.Note)
	err = s.viewAudit(func(tx auditlog.Txn) (err error) {
		b.Entries, err = auditlog.Proof(tx, indices, cp.Size)
		return err
	})
	for i := range b.Entries {
		b.Entries[i].Archive = s.ArchiveOf(b.Entries[i].Index)
	}
	return b, err
}

// ConsistencyProof proves that the tree of size1 is a prefix of the tree
// of size2 (both no larger than the log).
func (s *Store) ConsistencyProof(size1, size2 uint64) ([][]byte, error) {
	var out [][]byte
	err := s.view(func(txn *badger.Txn) error {
		n, err := s.getU64(txn, metaKey("aseq"))
		if err != nil {
			return err
		}
		if size2 > n {
			return fault.Errorf("audit.consistency", fault.Invalid, "the log holds %d entries, not %d", n, size2)
		}
		out, err = auditlog.Consistency(auditTxn{s, wtxn{Txn: txn}}, size1, size2)
		return err
	})
	return out, err
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
