package server_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// threeSwitches is a centre (TW, serving TW and CP) and two provinces
// (HN, NA), each province linked to the centre only.
func threeSwitches(t *testing.T, extra ...daemon.Route) *daemontest.Network {
	return daemontest.StartNetwork(t, nil,
		daemontest.NetSwitch{Name: "TW", Prefixes: []string{"TW", "CP"}, Peers: []string{"HN", "NA"},
			Routes: append([]daemon.Route{{Prefix: "HN", Via: []string{"HN"}}, {Prefix: "NA", Via: []string{"NA"}}}, extra...)},
		daemontest.NetSwitch{Name: "HN", Prefixes: []string{"HN"}, Peers: []string{"TW"}, Routes: []daemon.Route{{Prefix: "*", Via: []string{"TW"}}}},
		daemontest.NetSwitch{Name: "NA", Prefixes: []string{"NA"}, Peers: []string{"TW"}, Routes: []daemon.Route{{Prefix: "*", Via: []string{"TW"}}}},
	)
}

// receiveUntil receives as name at site until want telegrams (inbox) or
// reports (receipts) are in, or a minute passes.
func receiveUntil(t *testing.T, site *daemontest.Site, name string, opts client.ReceiveOptions, want int) *daemontest.Collector {
	t.Helper()
	col := &daemontest.Collector{}
	deadline := time.Now().Add(time.Minute)
	for {
		c := site.Dial(name)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := c.Receive(ctx, opts, col)
		cancel()
		c.Close()
		if err != nil {
			t.Fatalf("receive as %s: %v", name, err)
		}
		n := col.Count()
		if opts.Receipts && !opts.Inbox {
			n = len(col.Receipts)
		}
		if n >= want {
			return col
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d of %d after a minute", name, n, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A telegram filed at one province's switch for an agency of the other
// reaches it through the centre, with its ID and its trace; the sender
// gets DELIVERED from the far switch; each switch on the way records its
// hop, and the filing switch shows the copy relayed.
func TestRelayAcrossSwitches(t *testing.T) {
	n := threeSwitches(t)
	hn, tw, na := n.Sites["HN"], n.Sites["TW"], n.Sites["NA"]
	c := hn.Dial("HN.UBND")
	var ids []telegram.ID
	for i, p := range []telegram.Precedence{telegram.Routine, telegram.Flash} {
		res, err := c.Send(context.Background(), tg("NA.UBND", p, fmt.Sprintf("điện %d", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.ID)
	}
	res, err := c.Send(context.Background(), tg("TW.VPTW", telegram.Immediate, "lên trung ương"))
	if err != nil {
		t.Fatal(err)
	}
	// NA.UBND's copies wait at HN only for the link: a terminal of it
	// cannot take them there.
	err = hn.Dial("NA.UBND").Receive(context.Background(), inbox, &daemontest.Collector{})
	if fault.KindOf(err) != fault.Permission || !strings.Contains(err.Error(), "served by another switch") {
		t.Fatalf("NA.UBND subscribing at HN: %v; want refused, served by another switch", err)
	}
	got := receiveUntil(t, na, "NA.UBND", inbox, 2)
	if len(got.Telegrams) != 2 {
		t.Fatalf("NA.UBND got %d telegrams, want 2", len(got.Telegrams))
	}
	for _, d := range got.Telegrams {
		if !slices.Contains(ids, d.Header.ID) {
			t.Fatalf("NA.UBND got %s, not one of the IDs HN gave %v", d.Header.ID, ids)
		}
		if tr := strings.Join(d.Header.Passed(), ">"); tr != "HN>TW>NA" {
			t.Fatalf("trace %s, want HN>TW>NA", tr)
		}
		if d.PossibleDuplicate {
			t.Fatalf("%s flagged possible duplicate on a clean run", d.Header.ID)
		}
	}
	if top := receiveUntil(t, tw, "TW.VPTW", inbox, 1); top.Telegrams[0].Header.ID != res.ID {
		t.Fatalf("TW.VPTW got %s, want %s", top.Telegrams[0].Header.ID, res.ID)
	}
	reports := receiveUntil(t, hn, "HN.UBND", client.ReceiveOptions{Receipts: true}, 3)
	for _, r := range reports.Receipts {
		if r.Status != telegram.Delivered {
			t.Fatalf("report %+v, want DELIVERED", r)
		}
	}
	if len(reports.Receipts) != 3 {
		t.Fatalf("%d reports, want 3", len(reports.Receipts))
	}
	ds, err := hn.Server.Store().Delivery(ids[0], "NA.UBND")
	if err != nil || ds.Via != "TW" {
		t.Fatalf("HN's delivery state for NA.UBND: %+v, %v; want relayed via TW", ds, err)
	}
	entries, err := tw.Server.Store().QueryAudit(store.AuditQuery{ID: ids[1]})
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	for _, e := range entries {
		events = append(events, e.Event)
	}
	for _, want := range []string{"received", "relayed", "report_queued"} {
		if !slices.Contains(events, want) {
			t.Fatalf("TW's audit of %s: %v; want a %s entry", ids[1], events, want)
		}
	}
	seqs, err := na.Server.Store().LinkSeq("TW")
	if err != nil || seqs.In[telegram.Flash.Rank()] != 1 || seqs.In[telegram.Routine.Rank()] != 1 {
		t.Fatalf("NA's sequence numbers from TW: %+v, %v; want 1 FLASH and 1 ROUTINE", seqs, err)
	}
}

// A copy no switch can route, and one whose route loops, come back
// NOT_DELIVERED with the reason the switch that found it gave.
func TestRelayNoRouteAndLoop(t *testing.T) {
	n := threeSwitches(t, daemon.Route{Prefix: "ZZ", Via: []string{"HN"}})
	hn := n.Sites["HN"]
	c := hn.Dial("HN.UBND")
	for _, to := range []string{"XX.UBND", "ZZ.UBND"} {
		if _, err := c.Send(context.Background(), tg(to, telegram.Priority, "lạc đường")); err != nil {
			t.Fatal(err)
		}
	}
	reports := receiveUntil(t, hn, "HN.UBND", client.ReceiveOptions{Receipts: true}, 2)
	why := map[telegram.Address]string{}
	for _, r := range reports.Receipts {
		if r.Status != telegram.NotDelivered {
			t.Fatalf("report %+v, want NOT_DELIVERED", r)
		}
		why[r.Addressee] = r.Reason
	}
	if !strings.HasPrefix(why["XX.UBND"], "no route: TW has no route to XX.UBND") {
		t.Fatalf("XX.UBND: %q, want no route at TW", why["XX.UBND"])
	}
	if !strings.HasPrefix(why["ZZ.UBND"], "loop detected") {
		t.Fatalf("ZZ.UBND: %q, want loop detected", why["ZZ.UBND"])
	}
}
