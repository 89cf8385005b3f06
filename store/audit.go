package store

import (
	"encoding/binary"
	"strconv"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// AuditEntry is one audit record (see package audit).
type AuditEntry = audit.Entry

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
)

func auditKey(index uint64) []byte { return binary.BigEndian.AppendUint64([]byte{pAudit}, index) }

func auditIDKey(id telegram.ID, index uint64) []byte {
	return binary.BigEndian.AppendUint64(idKey(pAuditID, id), index)
}

func (ks keyspace) auditAgencyKey(a telegram.Address, index uint64) []byte {
	return binary.BigEndian.AppendUint64(ks.agencyKey(pAuditAgency, a), index)
}

// appendAudit writes e as the next audit entry in c's transaction: the
// leaf, its index entries (by telegram and by agency) and the tree nodes it
// completes. The entry's index and time are assigned here.
func (c *commitCtx) appendAudit(e AuditEntry) error {
	e.Index = c.st.aseq
	e.At = unixUTC(c.now)
	leaf, err := audit.Leaf(e)
	if err != nil {
		return fault.E("store.audit", fault.Internal, "encode an audit entry", err)
	}
	if err := c.set(auditKey(e.Index), leaf); err != nil {
		return err
	}
	if !e.ID.IsZero() {
		if err := c.txn.Set(auditIDKey(e.ID, e.Index), nil); err != nil {
			return err
		}
	}
	if e.From != "" {
		if err := c.txn.Set(c.s.ks.auditAgencyKey(e.From, e.Index), nil); err != nil {
			return err
		}
	}
	if e.To != "" && e.To != e.From {
		if err := c.txn.Set(c.s.ks.auditAgencyKey(e.To, e.Index), nil); err != nil {
			return err
		}
	}
	if err := c.appendLeaf(audit.LeafHash(leaf)); err != nil {
		return err
	}
	c.st.aseq++
	return nil
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
	return s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pAudit}, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		n := 0
		for it.Seek(auditKey(from)); it.Valid() && n < limit; it.Next() {
			index := binary.BigEndian.Uint64(it.Item().Key()[1:])
			v, err := s.value(it.Item())
			if err != nil {
				return fault.E("store.audit", fault.Integrity, "audit entry "+itoa(index)+" fails its integrity check", err)
			}
			if err := fn(index, v); err != nil {
				return err
			}
			n++
		}
		return nil
	})
}

// auditAt reads one audit entry.
func (s *Store) auditAt(txn *badger.Txn, index uint64) (AuditEntry, []byte, error) {
	v, err := s.get(txn, auditKey(index))
	if err != nil {
		return AuditEntry{}, nil, fault.E("store.audit", fault.Integrity, "audit entry "+itoa(index)+" is missing or fails its integrity check", err)
	}
	e, err := audit.ParseLeaf(v)
	if err != nil {
		return AuditEntry{}, nil, fault.E("store.audit", fault.Integrity, "audit entry "+itoa(index)+" is malformed", err)
	}
	return e, v, nil
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
