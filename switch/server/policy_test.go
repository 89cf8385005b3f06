package server

import (
	"testing"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

// The audit log's role conditions, one row each.
func TestAuditQueryScope(t *testing.T) {
	term := certs.Identity{Role: certs.Terminal, Agency: "NA.TU"}
	op := certs.Identity{Role: certs.Operator}
	aud := certs.Identity{Role: certs.Auditor}
	id := telegram.ID{7}
	yes, no := func() bool { return true }, func() bool { return false }
	for _, c := range []struct {
		name       string
		who        certs.Identity
		q          wire.AuditQuery
		party      func() bool
		wantAgency telegram.Address
		redact     bool
		denied     bool
	}{
		{"auditor: as asked", aud, wire.AuditQuery{Agency: "HN.UBND"}, no, "HN.UBND", false, false},
		{"terminal: its own agency", term, wire.AuditQuery{}, no, "NA.TU", false, false},
		{"terminal: another agency", term, wire.AuditQuery{Agency: "HN.UBND"}, no, "", false, true},
		{"terminal: a telegram it was party to, every entry", term, wire.AuditQuery{ID: id}, yes, "", false, false},
		{"terminal: a telegram it was not party to, its own entries only", term, wire.AuditQuery{ID: id}, no, "NA.TU", false, false},
		{"operator: everything, redacted", op, wire.AuditQuery{Event: audit.Filed}, no, "", true, false},
		{"operator: no filter by agency", op, wire.AuditQuery{Agency: "NA.TU"}, no, "", false, true},
		{"operator: no filter by precedence", op, wire.AuditQuery{Precedence: telegram.Flash}, no, "", false, true},
		{"switch: nothing", certs.Identity{Role: certs.Switch}, wire.AuditQuery{}, no, "", false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			q, redact, err := auditQueryScope(c.who, c.q, c.party)
			if c.denied {
				if !fault.Is(fault.Permission, err) {
					t.Fatalf("got %v, want a Permission error", err)
				}
				return
			}
			if err != nil || q.Agency != c.wantAgency || redact != c.redact {
				t.Fatalf("agency %q redact %v err %v; want agency %q redact %v", q.Agency, redact, err, c.wantAgency, c.redact)
			}
		})
	}
}

func TestMayProveAndList(t *testing.T) {
	leaf, _ := audit.Leaf(audit.Entry{Event: audit.Queued, ID: telegram.ID{1}, From: "HN.UBND", To: "NA.TU"})
	b := audit.Bundle{ID: telegram.ID{1}, Entries: []audit.BundleEntry{{Leaf: leaf}}}
	for _, c := range []struct {
		who certs.Identity
		ok  bool
	}{
		{certs.Identity{Role: certs.Terminal, Agency: "NA.TU"}, true},
		{certs.Identity{Role: certs.Terminal, Agency: "HN.UBND"}, true},
		{certs.Identity{Role: certs.Terminal, Agency: "HCM.UBND"}, false},
		{certs.Identity{Role: certs.Auditor}, true},
	} {
		if err := mayProve(c.who, b); (err == nil) != c.ok {
			t.Errorf("mayProve(%s %s) = %v", c.who.Role, c.who.Agency, err)
		}
	}
	if mayListCheckpoints(certs.Identity{Role: certs.Auditor}) != nil || mayListCheckpoints(certs.Identity{Role: certs.Operator}) == nil {
		t.Error("only auditors list every checkpoint")
	}
	e := audit.Entry{ID: telegram.ID{1}, From: "HN.UBND", To: "NA.TU", Precedence: telegram.Flash, Classification: telegram.Secret, Actor: "x"}
	redactEntry(&e)
	if e.From != "" || e.To != "" || e.Precedence != 0 || e.Classification != 0 || e.Actor != "x" {
		t.Errorf("redacted %+v", e)
	}
	sec := audit.Entry{From: "HN.UBND", Event: audit.Security}
	redactEntry(&sec)
	if sec.From != "HN.UBND" {
		t.Error("an entry without a telegram lost its agency")
	}
}
