package server

import (
	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

// The finer conditions of the routes table, as pure functions of who asks
// and what: each returns what the role may have, or a Permission error
// (the handler denies, audited). Who sees what of the audit log:
//
//	auditor   everything: query, export, every checkpoint, any proof
//	terminal  entries that name its own agency as sender or addressee; all
//	          the entries of a telegram its agency sent or was sent (asked
//	          by ID), and proofs for them
//	operator  every entry, but telegram entries without sender, addressee,
//	          precedence or classification (the ID stays); no filter on
//	          those, no export, no proof
//	switch    nothing
//
// Anyone connected may read the latest checkpoint.

// auditQueryScope narrows query q to what who may read; party says
// whether who's agency sent or was sent the telegram q names (asked only
// when it matters: a terminal asking by ID). redact says the telegram
// entries must go out without sender, addressee, precedence or
// classification.
func auditQueryScope(who certs.Identity, q wire.AuditQuery, party func() bool) (_ wire.AuditQuery, redact bool, _ error) {
	switch who.Role {
	case certs.Auditor:
		return q, false, nil
	case certs.Terminal:
		if q.Agency != "" && q.Agency != who.Agency {
			return q, false, fault.Errorf("audit", fault.Permission, "a terminal of %s cannot read the audit entries of %s", who.Agency, q.Agency)
		}
		if q.ID.IsZero() || q.Agency != "" || !party() {
			q.Agency = who.Agency
		}
		return q, false, nil
	case certs.Operator:
		if q.Agency != "" || q.Precedence != 0 || q.Classification != 0 {
			return q, false, fault.E("audit", fault.Permission, "operators cannot filter the audit log by agency, precedence or classification; only auditors can")
		}
		return q, true, nil
	}
	return q, false, fault.Errorf("audit", fault.Permission, "%s certificates cannot read the audit log", who.Role)
}

// redactEntry takes out of a telegram entry what an operator may not see.
func redactEntry(e *audit.Entry) {
	if !e.ID.IsZero() {
		e.From, e.To, e.Precedence, e.Classification = "", "", 0, 0
	}
}

// mayListCheckpoints: the list of every checkpoint is for auditors.
func mayListCheckpoints(who certs.Identity) error {
	if who.Role != certs.Auditor {
		return fault.Errorf("audit", fault.Permission, "%s certificates cannot list the audit log's checkpoints; only auditors can", who.Role)
	}
	return nil
}

// mayProve: a terminal gets proofs only for telegrams its agency sent or
// was sent (some entry of the bundle names it); auditors for any.
func mayProve(who certs.Identity, b audit.Bundle) error {
	if who.Role != certs.Terminal {
		return nil
	}
	for _, be := range b.Entries {
		e, err := audit.ParseLeaf(be.Leaf)
		if err == nil && (e.From == who.Agency || e.To == who.Agency) {
			return nil
		}
	}
	return fault.Errorf("audit", fault.Permission, "telegram %s was neither sent by nor addressed to %s", b.ID, who.Agency)
}

// mayHandle: an operator sees and acts on a telegram only up to its
// clearance; above it, it sees the queues' counts and nothing of the
// telegram.
func mayHandle(who certs.Identity, h telegram.Header) error {
	if h.Classification > who.Clearance {
		return fault.Errorf("operator", fault.Permission, "telegram %s is classified above this operator's clearance (%s)", h.ID, who.Clearance)
	}
	return nil
}

// The journal's conditions.

// mayRetrieve says whether who may have a copy of telegram h, whose
// addressees' states are given, and to which agency the audit entry names
// it given (none for an auditor, or for the sender's own copy): the
// sender's terminals, an addressee's once it was delivered to it, and
// auditors, each cleared to the classification.
func mayRetrieve(who certs.Identity, h telegram.Header, states map[telegram.Address]store.DeliveryState) (telegram.Address, error) {
	if h.Classification > who.Clearance {
		return "", fault.Errorf("retrieve", fault.Permission, "telegram %s is classified above this certificate's clearance (%s)", h.ID, who.Clearance)
	}
	switch {
	case who.Role == certs.Auditor, who.Agency == h.From:
		return "", nil
	}
	ds, ok := states[who.Agency]
	switch {
	case !ok:
		return "", fault.Errorf("retrieve", fault.Permission, "telegram %s was not sent by or to %s", h.ID, who.Agency)
	case ds.Status != telegram.Delivered:
		return "", fault.Errorf("retrieve", fault.Invalid, "telegram %s has not been delivered to %s yet: it comes through the inbox", h.ID, who.Agency)
	}
	return who.Agency, nil
}

// mayResend says whether who may send telegram h again: an operator, or a
// terminal of the sender agency, cleared to its classification.
func mayResend(who certs.Identity, h telegram.Header) error {
	switch {
	case h.Classification > who.Clearance:
		return fault.Errorf("resend", fault.Permission, "telegram %s is classified above this certificate's clearance (%s)", h.ID, who.Clearance)
	case who.Role == certs.Operator, who.Agency == h.From:
		return nil
	}
	return fault.Errorf("resend", fault.Permission, "only the sender agency or an operator may send telegram %s again", h.ID)
}

// journalScope narrows a journal listing to what who may list: a
// terminal, its own agency only.
func journalScope(who certs.Identity, q wire.JournalQuery) (wire.JournalQuery, error) {
	if who.Scoped() {
		if q.Agency == "" {
			return q, fault.Errorf("journal", fault.Permission, "this operator's certificate is limited to %s: name an agency there (--agency)", scopeList(who))
		}
		return q, scopeAgencies(who, "journal", q.Agency)
	}
	if who.Role != certs.Terminal {
		return q, nil
	}
	if q.Agency != "" && q.Agency != who.Agency {
		return q, fault.Errorf("journal", fault.Permission, "a terminal lists only its own agency's telegrams, not %s's", q.Agency)
	}
	q.Agency = who.Agency
	return q, nil
}
