package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

// A store that holds an audit entry written before entries were bounded
// (a refusal quoting ~300 KB of a request, larger than a normal frame) is
// still fully exported and verified through the real switch and client,
// and queried; a new refusal of the same kind is bounded.
func TestOversizeLegacyEntryStaysVerifiable(t *testing.T) {
	dir := t.TempDir()
	site := daemontest.StartIn(t, dir)
	site.Stop()
	st := daemontest.OpenStore(t, dir)
	legacy := st.AuditSize()
	huge := "unknown addressee " + strings.Repeat(`"\u0001", `, 30000)
	if err := st.AppendUnbounded(store.AuditEntry{Event: audit.Refused, Actor: "HN.UBND/terminal 1", From: "HN.UBND", Reason: huge}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	site = daemontest.StartIn(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// A refusal that quotes the client's input, made now: bounded.
	m := client.Telegram{To: []telegram.Address{telegram.Address(strings.Repeat("\x01", 60000))}, Body: []byte("x")}
	if _, err := site.Dial("HN.UBND").Send(ctx, m); err == nil {
		t.Fatal("a filing to a malformed address was accepted")
	}
	aud := site.Dial("auditor")
	notes, vkey, err := aud.AuditCheckpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v := audit.NewVerifier()
	for _, n := range notes {
		cp, err := audit.OpenCheckpoint(n, vkey)
		if err != nil {
			t.Fatal(err)
		}
		v.Expect(cp)
	}
	var biggest int
	err = aud.AuditLeaves(ctx, 0, func(l wire.AuditLeaf) error {
		if l.Index == legacy {
			biggest = len(l.Leaf)
		} else if len(l.Leaf) > audit.MaxLeaf {
			t.Errorf("entry %d: a leaf of %d bytes", l.Index, len(l.Leaf))
		}
		return v.Add(l.Index, l.Leaf)
	}, nil)
	if err != nil {
		t.Fatalf("export or verify stopped: %v", err)
	}
	if biggest < 256<<10 {
		t.Fatalf("the largest leaf exported is %d bytes; the legacy entry is missing", biggest)
	}
	if len(v.Checked()) != len(notes) || v.Size() != site.Server.Store().AuditSize() {
		t.Fatalf("verified %d of %d checkpoints, %d of %d entries", len(v.Checked()), len(notes), v.Size(), site.Server.Store().AuditSize())
	}
	var refusals []audit.Entry
	for q := (wire.AuditQuery{Event: audit.Refused}); ; {
		page, err := aud.AuditQuery(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		refusals = append(refusals, page.Entries...)
		if !page.More || len(page.Entries) == 0 {
			break
		}
		q.From = page.Entries[len(page.Entries)-1].Index + 1
	}
	if len(refusals) != 2 || refusals[0].Index != legacy || !strings.Contains(refusals[1].Reason, `\x01`) {
		t.Fatalf("query of refusals, paged: %d entries; want the legacy one and the new one", len(refusals))
	}
}
