package server_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
)

// Admission control on a real switch, made to count itself saturated at
// once (a target delay of a microsecond): ROUTINE filings are limited and
// refused with a retry-after hint, the client library files them again
// until every one is accepted, while FLASH and IMMEDIATE filings, never
// limited, are accepted at the first try; the start of limiting is
// audited and the refusals are counted in the metrics.
func TestAdmissionControl(t *testing.T) {
	site := daemontest.StartWith(t, t.TempDir(), nil, func(c *daemon.Config) {
		c.Admission.TargetDelay = daemon.Duration(time.Microsecond)
		c.Admission.Floor = 400
		c.Limits.FilingRate = 100_000
	})
	ctx := context.Background()
	const senders, batches, per = 4, 40, 25
	var wg sync.WaitGroup
	errs := make(chan error, senders*batches*per+40)
	for i := range senders {
		c := site.Dial([]string{"HN.UBND", "CP.VPCP", "TW.VPTW", "NA.VINH.UBND"}[i])
		wg.Go(func() {
			for range batches {
				batch := make([]client.Telegram, per)
				for j := range batch {
					batch[j] = tg("NA.TU", telegram.Routine, "x")
				}
				res, err := c.SendBatch(ctx, batch)
				if err != nil {
					errs <- err
					return
				}
				for _, r := range res {
					if r.Err != nil || r.ID.IsZero() {
						errs <- r.Err
					}
				}
			}
		})
	}
	urgent := site.Dial("NA.UBND")
	urgent.RetryFor = -1 // a refusal would show
	for i := range 20 {
		p := []telegram.Precedence{telegram.Flash, telegram.Immediate}[i%2]
		if _, err := urgent.Send(ctx, tg("HN.UBND", p, "khẩn")); err != nil {
			t.Errorf("%s filed during the flood: %v", p, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a ROUTINE filing not accepted in the end: %v", err)
	}
	if n := metric(t, site, "dienbao_admission_refused_total"); n == 0 {
		t.Fatal("no filing was refused: admission control never limited")
	}
	es, err := site.Server.Store().QueryAudit(store.AuditQuery{Event: audit.Admission, Limit: 100})
	if err != nil || len(es) == 0 || !strings.Contains(es[0].Reason, "admission control: ROUTINE limited to") || es[0].Actor != "switch" {
		t.Fatalf("admission audit entries: %+v %v", es, err)
	}
	if waiting := waitingFor(t, site, "NA.TU"); waiting != senders*batches*per {
		t.Fatalf("%d telegrams queued for NA.TU, want %d: each filed once", waiting, senders*batches*per)
	}
}

// metric reads a counter or gauge without labels from the switch's registry.
func metric(t *testing.T, site *daemontest.Site, name string) float64 {
	t.Helper()
	mfs, err := site.Server.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// waitingFor is how many telegrams wait for agency, from the store's figures.
func waitingFor(t *testing.T, site *daemontest.Site, agency telegram.Address) int64 {
	t.Helper()
	q, err := site.Server.Store().QueueStats(agency)
	if err != nil {
		t.Fatal(err)
	}
	var waiting int64
	for _, c := range q.Queues {
		waiting += c.Waiting
	}
	return waiting
}
