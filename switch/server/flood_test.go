package server_test

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/quic-go/quic-go"
)

// A handshake flood from many source addresses (127.1.x.y, each a real
// QUIC client that answers Retry, so address validation does not stop
// it): a foreign-CA certificate with a 2,000-character name, once from
// each source. Every source is a new aggregation key, so it is the
// switch-wide budget that holds: at most 100 entries per refusal
// interval, plus one overflow entry each. The log still verifies and a
// normal terminal files and receives. DIENBAO_FLOOD_SOURCES sets the
// number of sources (default 200; the README's figure is for 1,000).
func TestHandshakeFloodFromManySources(t *testing.T) {
	sources := 200
	if v, err := strconv.Atoi(os.Getenv("DIENBAO_FLOOD_SOURCES")); err == nil && v > 0 && v <= 60000 {
		sources = v
	}
	const interval = 3 * time.Second
	site := daemontest.StartWith(t, t.TempDir(), nil, func(c *daemon.Config) {
		fastTimers(c)
		c.Audit.RefusalInterval = daemon.Duration(interval)
	})
	st := site.Server.Store()
	sizeBefore := st.AuditSize()
	ca, err := certs.NewCA("rogue CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	foreignIdentity(t, site, ca, "rogue", "rogue "+strings.Repeat("x", 2000))
	f, err := certs.LoadFolder(site.IDDir("rogue"))
	if err != nil {
		t.Fatal(err)
	}
	host, _, _ := net.SplitHostPort(f.Switch)
	conf := &tls.Config{MinVersion: tls.VersionTLS13, CurvePreferences: wire.KeyExchanges, Certificates: []tls.Certificate{f.Cert},
		RootCAs: f.CAs, ServerName: host, NextProtos: []string{wire.ALPN}}
	server, err := net.ResolveUDPAddr("udp", f.Switch)
	if err != nil {
		t.Fatal(err)
	}

	var refusedSeen atomic.Int64
	work := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				src := &net.UDPAddr{IP: net.IPv4(127, 1, byte(i/250), byte(i%250+1))}
				udp, err := net.ListenUDP("udp", src)
				if err != nil {
					t.Errorf("source %s: %v", src, err)
					continue
				}
				tr := &quic.Transport{Conn: udp}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				c, err := tr.Dial(ctx, server, conf, &quic.Config{MaxIdleTimeout: 10 * time.Second})
				if err == nil { // TLS 1.3: the client may finish before the switch's verdict
					select {
					case <-c.Context().Done():
						refusedSeen.Add(1)
					case <-ctx.Done():
						t.Errorf("source %s: a certificate from another CA kept its connection", src)
					}
				} else {
					refusedSeen.Add(1)
				}
				cancel()
				tr.Close()
			}
		}()
	}
	for i := 0; i < sources; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	took := time.Since(start)
	intervals := int(took/interval) + 2
	time.Sleep(interval + time.Second) // the last interval's summaries

	es, err := st.QueryAudit(store.AuditQuery{Event: audit.Security, From: sizeBefore, Limit: store.MaxQueryLimit})
	if err != nil {
		t.Fatal(err)
	}
	var entries, overflow, bytes int
	for _, e := range es {
		if !strings.HasPrefix(e.Actor, "certificate rogue") && !strings.Contains(e.Reason, "over the audit budget") {
			continue
		}
		l, _ := audit.Leaf(e)
		bytes += len(l)
		if strings.Contains(e.Reason, "over the audit budget for refusals") {
			overflow++
		} else {
			entries++
		}
	}
	if refusedSeen.Load() != int64(sources) {
		t.Fatalf("%d of %d handshakes refused", refusedSeen.Load(), sources)
	}
	if entries > 100*intervals || sources > 100*intervals && overflow == 0 || entries == 0 {
		t.Fatalf("%d sources over %d intervals: %d entries, %d overflow summaries", sources, intervals, entries, overflow)
	}
	t.Logf("%d sources in %s (%.0f handshakes/s): %d entries and %d overflow summaries, %d bytes of leaves (%.0f bytes/s over the flood and the last interval)",
		sources, took.Round(time.Millisecond), float64(sources)/took.Seconds(), entries, overflow, bytes, float64(bytes)/(took+interval).Seconds())
	if v, n := daemontest.VerifyAudit(t, st); v == 0 || n == 0 {
		t.Fatal("the audit log did not verify")
	}
	healthy(t, site)
}
