package server_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

// An operator whose scope names a link (link:HN) sees that link and holds
// and releases it, not the centre's other link; a notice for it is its to
// post; the refusal is audited.
func TestOperatorScopeOfLinks(t *testing.T) {
	n := threeSwitches(t)
	tw := n.Sites["TW"]
	ca, err := certs.LoadCA(filepath.Join(tw.Dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	iss, err := ca.Issue(certs.Request{Name: "HN line operator", Role: certs.Operator, Clearance: telegram.Secret,
		Scope: []telegram.Address{"HN"}, Links: []string{"HN"}, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := os.ReadFile(filepath.Join(tw.IDDir("operator"), "switch"))
	if err := certs.WriteFolder(tw.IDDir("op-hn"), iss, ca.PEM, strings.TrimSpace(string(addr))); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	op := tw.Dial("op-hn")
	peers := func(ls wire.Links) (out []string) {
		for _, l := range ls.Links {
			out = append(out, l.Peer+" "+l.State)
		}
		return out
	}
	ls, err := op.Links(ctx)
	if err != nil || len(ls.Links) != 1 || ls.Links[0].Peer != "HN" {
		t.Fatalf("links in scope: %v %v", peers(ls), err)
	}
	all, err := tw.Dial("operator").Links(ctx)
	if err != nil || len(all.Links) != 2 {
		t.Fatalf("the network operator's links: %v %v", peers(all), err)
	}
	if ls, err = op.HoldLink(ctx, "HN", true); err != nil || strings.Join(peers(ls), ",") != "HN held" {
		t.Fatalf("hold the link in scope: %v %v", peers(ls), err)
	}
	if _, err := op.HoldLink(ctx, "HN", false); err != nil {
		t.Fatal(err)
	}
	if _, err := op.HoldLink(ctx, "NA", true); !fault.Is(fault.Permission, err) || !strings.Contains(err.Error(), "the link to NA is outside this operator's scope (HN, link:HN)") {
		t.Fatalf("hold a link outside the scope: %v", err)
	}
	if _, err := op.Notice(ctx, wire.NoticeRequest{Post: &wire.Notice{Affects: "link:NA", Until: time.Now().Add(time.Hour), Text: "x"}}); !fault.Is(fault.Permission, err) {
		t.Fatalf("a notice for a link outside the scope: %v", err)
	}
	if r, err := op.Notice(ctx, wire.NoticeRequest{Post: &wire.Notice{Affects: "link:HN", Until: time.Now().Add(time.Hour), Text: "cáp quang HN đứt"}}); err != nil || r.Posted != 1 {
		t.Fatalf("a notice for its link: %+v %v", r, err)
	}
	// Audited: the hold and release, and the refusal.
	es, err := tw.Server.Store().QueryAudit(storeQuery("link"))
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	for _, e := range es {
		if e.Actor == "HN line operator" && strings.HasPrefix(e.Reason, "link to HN ") {
			held++
		}
	}
	if held != 2 {
		t.Errorf("%d link actions audited, want 2: %+v", held, es)
	}
	sec, err := tw.Server.Store().QueryAudit(storeQuery("security"))
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, e := range sec {
		if strings.Contains(e.Reason, "outside this operator's scope (HN, link:HN)") {
			refused++
		}
	}
	if refused != 2 {
		t.Errorf("%d scope refusals audited, want 2", refused)
	}
}

func storeQuery(event string) store.AuditQuery { return store.AuditQuery{Event: event, Limit: 1000} }
