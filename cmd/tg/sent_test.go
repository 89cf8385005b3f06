package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
)

// tg sent lists what this terminal filed, each addressee's state from the
// delivery reports (taken from the switch first); a terminal whose
// certificate is renewed with a new key still reads its inbox, re-sealed
// under the new key.
func TestSentFolderAndRenewedInbox(t *testing.T) {
	site := daemontest.Start(t)
	hn, tu := site.IDDir("HN.UBND"), site.IDDir("NA.TU")
	mustTG(t, "--id", hn, "send", "--to", "NA.TU", "--prec", "khẩn", "--subject", "Lịch họp", "--ref", "lh-1", "Họp lúc 8 giờ")
	mustTG(t, "--id", hn, "send", "--to", "NA.TU", "--prec", "khẩn", "--subject", "Lịch họp", "--ref", "lh-1", "Họp lúc 8 giờ") // again: one telegram
	mustTG(t, "--id", hn, "send", "--to", "NA.VINH.UBND", "--info", "NA.TU", "Thông báo")
	rows := jsonLines(t, mustTG(t, "--id", hn, "--json", "sent", "--offline").stdout)
	if len(rows) != 2 {
		t.Fatalf("%d sent, want 2", len(rows))
	}
	mustTG(t, "--id", tu, "inbox")
	r := mustTG(t, "--id", hn, "sent")
	if !strings.Contains(r.stdout, "  PRIORITY  UNCLASSIFIED  filed ") || !strings.Contains(r.stdout, `"Lịch họp"  ref lh-1`) ||
		!strings.Contains(r.stdout, "    NA.TU          DELIVERED ") || !strings.Contains(r.stdout, "    NA.VINH.UBND   waiting: no delivery report yet") {
		t.Fatalf("tg sent:\n%s", r.stdout)
	}
	pending := jsonLines(t, mustTG(t, "--id", hn, "--json", "sent", "--pending").stdout)
	if len(pending) != 1 || pending[0]["addressees"].([]any)[0].(map[string]any)["status"] != "WAITING" ||
		pending[0]["addressees"].([]any)[1].(map[string]any)["status"] != "DELIVERED" {
		t.Fatalf("tg sent --pending: %v", pending)
	}
	if got := jsonLines(t, mustTG(t, "--id", hn, "--json", "sent", "--to", "na.vinh.ubnd").stdout); len(got) != 1 {
		t.Fatalf("tg sent --to NA.VINH.UBND: %d", len(got))
	}

	// NA.TU's certificate renewed with a new key: its inbox still reads,
	// now under the new key alone.
	before := mustTG(t, "--id", tu, "inbox", "--stored").stdout
	mustTG(t, "--id", tu, "certs", "renew", "--ca", filepath.Join(site.Dir, "ca"))
	after := mustTG(t, "--id", tu, "inbox", "--stored").stdout
	if after != before || !strings.Contains(after, "Họp lúc 8 giờ") {
		t.Fatalf("the inbox after the renewal:\n%s\nbefore:\n%s", after, before)
	}
	f, err := certs.LoadFolder(tu)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := client.InboxKey(f)
	in := &client.Inbox{Dir: filepath.Join(tu, "inbox"), Key: key}
	if msgs, err := in.Messages(); err != nil || len(msgs) != 2 {
		t.Fatalf("the inbox under the new key alone: %d %v", len(msgs), err)
	}
	if _, err := os.Stat(filepath.Join(tu, "key.pem.old")); err == nil {
		t.Fatal("the former key was kept after the inbox was re-sealed")
	}
}
