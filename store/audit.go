package store

import (
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

// Audit events.
const (
	AuditFiled           = "filed"            // a filing was accepted
	AuditRefused         = "refused"          // a filing was refused (Reason says why)
	AuditQueued          = "queued"           // a telegram was queued for one addressee
	AuditDelivered       = "delivered"        // an addressee's terminal acknowledged
	AuditReportQueued    = "report_queued"    // a delivery report is waiting for the sender
	AuditReportDelivered = "report_delivered" // the sender's terminal acknowledged a report
	AuditSwitchStart     = "switch_start"
	AuditSwitchStop      = "switch_stop"
	AuditSecurity        = "security"     // a refused handshake or request
	AuditExpired         = ReasonExpired  // withdrawn at its latest delivery time
	AuditParked          = ReasonParked   // parked after too many failed attempts
	AuditAttempt         = "attempt"      // a telegram was handed to a terminal
	AuditOverdue         = "overdue"      // passed its speed-of-service target while waiting
	AuditIntegrity       = "integrity"    // a record failed its integrity check
	AuditKeyRotation     = "key_rotation" // a data key became current, or was retired
)

// AuditEntry is one audit record. It never carries a body or a subject.
type AuditEntry struct {
	Seq            uint64                  `cbor:"1,keyasint" json:"seq"`
	At             time.Time               `cbor:"2,keyasint" json:"at"`
	Actor          string                  `cbor:"3,keyasint" json:"actor"`
	Event          string                  `cbor:"4,keyasint" json:"event"`
	ID             telegram.ID             `cbor:"5,keyasint,omitempty" json:"id,omitzero"`
	Agency         telegram.Address        `cbor:"6,keyasint,omitempty" json:"agency,omitempty"`
	Precedence     telegram.Precedence     `cbor:"7,keyasint,omitempty" json:"precedence,omitzero"`
	Classification telegram.Classification `cbor:"8,keyasint,omitempty" json:"classification,omitzero"`
	Reason         string                  `cbor:"9,keyasint,omitempty" json:"reason,omitempty"`
}

// appendAudit writes e as the next audit entry in c's transaction.
func (c *commitCtx) appendAudit(e AuditEntry) error {
	c.st.aseq++
	e.Seq = c.st.aseq
	if e.At.IsZero() {
		e.At = time.Unix(0, c.now).UTC()
	}
	b, err := wire.Marshal(&e)
	if err != nil {
		return err
	}
	return c.set(auditKey(e.Seq), b)
}

// Record appends one audit entry on its own (refusals, security events,
// start and stop). It returns after the entry is on disk.
func (s *Store) Record(e AuditEntry) error {
	return s.submit(&op{apply: func(c *commitCtx) error { return c.appendAudit(e) }})
}

// Audit returns up to limit audit entries with sequence >= from, oldest
// first.
func (s *Store) Audit(from uint64, limit int) ([]AuditEntry, error) {
	var out []AuditEntry
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pAudit}})
		defer it.Close()
		for it.Seek(auditKey(from)); it.Valid() && len(out) < limit; it.Next() {
			var e AuditEntry
			v, err := s.value(it.Item())
			if err == nil {
				err = wire.Unmarshal(v, &e)
			}
			if err != nil {
				return fault.E("store.audit", fault.Integrity, "unreadable audit entry", err)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}
