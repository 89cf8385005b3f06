package server_test

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
)

// BenchmarkFileOneAtATime: one sender, one telegram at a time, 1 KiB body,
// every safety on. ns/op is the ACCEPTED latency (fsync included); the
// p50/p99 metrics are reported alongside.
func BenchmarkFileOneAtATime(b *testing.B) {
	site := daemontest.Start(b)
	c := site.Dial("HN.UBND")
	msg := client.Telegram{To: []telegram.Address{"NA.TU"}, Body: make([]byte, 1024)}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := c.Send(context.Background(), msg); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// BenchmarkFileConcurrent: 16 senders filing 1 KiB telegrams as fast as
// they can; group commit shares each fsync among them.
func BenchmarkFileConcurrent(b *testing.B) {
	site := daemontest.Start(b)
	const senders = 16
	names := []string{"TW.VPTW", "CP.VPCP", "HN.UBND", "NA.TU"}
	clients := make([]*client.Client, senders)
	for i := range clients {
		clients[i] = site.Dial(names[i%len(names)])
	}
	msg := client.Telegram{To: []telegram.Address{"DN.UBND"}, Body: make([]byte, 1024)}
	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	var wg sync.WaitGroup
	next := make(chan struct{}, b.N)
	for i := 0; i < b.N; i++ {
		next <- struct{}{}
	}
	close(next)
	b.ResetTimer()
	for _, c := range clients {
		wg.Add(1)
		go func(c *client.Client) {
			defer wg.Done()
			for range next {
				t0 := time.Now()
				if _, err := c.Send(context.Background(), msg); err != nil {
					b.Error(err)
					return
				}
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}(c)
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "accepted/s")
	reportPercentiles(b, lat)
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(p(0.50), "p50-ms")
	b.ReportMetric(p(0.99), "p99-ms")
}

// BenchmarkRelayDrainAfterHeal: b.N telegrams of 1 KiB filed at HN for
// NA.UBND wait at the centre while NA's switch is down; the timer runs
// from NA's restart until all are in NA's custody. Run it with
// -benchtime 5000x; the drain rate is reported as telegrams/s.
func BenchmarkRelayDrainAfterHeal(b *testing.B) {
	n := daemontest.CentreAndProvinces(b, nil)
	n.Sites["NA"].Stop()
	c := n.Sites["HN"].Dial("HN.UBND")
	msg := client.Telegram{To: []telegram.Address{"NA.UBND"}, Body: make([]byte, 1024)}
	for left := b.N; left > 0; {
		batch := make([]client.Telegram, min(left, 256))
		for i := range batch {
			batch[i] = msg
		}
		if _, err := c.SendBatch(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
		left -= len(batch)
	}
	waitQueued(b, n.Sites["TW"], "NA.UBND", b.N)
	b.ResetTimer()
	t0 := time.Now()
	na := n.Start("NA", nil)
	waitQueued(b, na, "NA.UBND", b.N)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "telegrams/s")
}
