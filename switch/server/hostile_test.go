package server_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/quic-go/quic-go"
)

// rawDial connects as a dev identity with a hand-made TLS configuration,
// for clients that do what the real one never does.
func rawDial(t *testing.T, site *daemontest.Site, name string, tweak func(*tls.Config)) (*quic.Conn, error) {
	t.Helper()
	f, err := certs.LoadFolder(site.IDDir(name))
	if err != nil {
		t.Fatal(err)
	}
	host, _, _ := net.SplitHostPort(f.Switch)
	conf := &tls.Config{MinVersion: tls.VersionTLS13, CurvePreferences: wire.KeyExchanges, Certificates: []tls.Certificate{f.Cert},
		RootCAs: f.CAs, ServerName: host, NextProtos: []string{wire.ALPN}}
	if tweak != nil {
		tweak(conf)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := quic.DialAddr(ctx, f.Switch, conf, &quic.Config{MaxIdleTimeout: 30 * time.Second})
	if err == nil {
		t.Cleanup(func() { c.CloseWithError(0, "") })
	}
	return c, err
}

// healthy checks that a normal terminal still files and receives.
func healthy(t *testing.T, site *daemontest.Site) {
	t.Helper()
	id := site.Send("HN.UBND", tg("NA.TU", telegram.Flash, "still here"))
	got := site.Receive("NA.TU", inbox)
	for _, d := range got.Telegrams {
		if d.Header.ID == id {
			return
		}
	}
	t.Fatalf("a normal terminal did not get its telegram (%d received)", len(got.Telegrams))
}

// securityEntries counts the security entries whose reason contains
// substr. Refused handshakes are recorded without waiting for the commit,
// so it waits (up to 10 s) for at least one before counting.
func securityEntries(t *testing.T, site *daemontest.Site, substr string) int {
	t.Helper()
	count := func() int {
		es, err := site.Server.Store().QueryAudit(store.AuditQuery{Event: audit.Security, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range es {
			if strings.Contains(e.Reason, substr) {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(10 * time.Second)
	for count() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // any more in the same flight
	return count()
}

// A client offering only classical key exchange is refused at the
// handshake, and the refusal audited; a normal session uses the hybrid
// post-quantum group, and operators see it.
func TestClassicalKeyExchangeRefused(t *testing.T) {
	site := daemontest.Start(t)
	_, err := rawDial(t, site, "HN.UBND", func(c *tls.Config) { c.CurvePreferences = []tls.CurveID{tls.X25519} })
	// The alert is handshake_failure (40), not internal_error (80).
	var alert *quic.TransportError
	if !errors.As(err, &alert) || alert.ErrorCode != quic.TransportErrorCode(0x100+40) {
		t.Fatalf("a client offering only X25519: %v, want a handshake_failure alert", err)
	}
	if n := securityEntries(t, site, "no post-quantum key exchange"); n != 1 {
		t.Fatalf("%d audit entries for the refusal, want 1", n)
	}
	healthy(t, site)
	list, err := site.Dial("operator").Sessions(context.Background())
	if err != nil || len(list) == 0 || list[0].KeyExchange != "X25519MLKEM768" {
		t.Fatalf("sessions %+v %v", list, err)
	}
}

// request writes raw bytes on a new stream and reads the reply frame.
func request(t *testing.T, c *quic.Conn, raw []byte, close bool) (wire.Type, []byte, error) {
	t.Helper()
	str, err := c.OpenStreamSync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	str.Write(raw)
	if close {
		str.Close()
	}
	str.SetReadDeadline(time.Now().Add(10 * time.Second))
	return wire.ReadFrame(str, wire.DefaultMaxFrame)
}

func frameHeader(length uint32, typ byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, length)
	return append(b, wire.Version, typ)
}

// Garbage, truncated frames, a 4 GiB length, an unknown type and silent
// streams each get their refusal; the connection that sent them, and
// everyone else, go on being served.
func TestHostileStreams(t *testing.T) {
	site := daemontest.StartWith(t, t.TempDir(), nil, func(c *daemon.Config) {
		c.Limits.RequestTimeout = daemon.Duration(300 * time.Millisecond)
	})
	c, err := rawDial(t, site, "HN.UBND", nil)
	if err != nil {
		t.Fatal(err)
	}
	errKind := func(typ wire.Type, payload []byte, err error) fault.Kind {
		t.Helper()
		if err != nil {
			t.Fatalf("no error frame: %v", err)
		}
		var we wire.Error
		if typ != wire.TError || wire.Decode(wire.TError, payload, &we) != nil {
			t.Fatalf("reply %s, want an error frame", typ)
		}
		return we.Kind
	}
	cases := []struct {
		name  string
		raw   []byte
		close bool
		want  fault.Kind
	}{
		{"HTTP instead of frames", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), true, fault.TooLarge},
		{"a 4 GiB length prefix", frameHeader(0xFFFFFFFF, byte(wire.TFile)), false, fault.TooLarge},
		{"a truncated header", []byte{0, 0}, true, fault.Invalid},
		{"a truncated payload", append(frameHeader(100, byte(wire.TFile)), 1, 2, 3), true, fault.Invalid},
		{"an unknown request type", append(frameHeader(3, 99), 0xa0), true, fault.Invalid},
		{"a payload that is not CBOR", append(frameHeader(5, byte(wire.TAuditQuery)), 0xff, 0xff, 0xff), true, fault.Invalid},
		{"a request of another role", append(frameHeader(3, byte(wire.TQueues)), 0xa0), true, fault.Permission},
	}
	for _, tc := range cases {
		typ, payload, err := request(t, c, tc.raw, tc.close)
		if k := errKind(typ, payload, err); k != tc.want {
			t.Errorf("%s: error kind %v, want %v", tc.name, k, tc.want)
		}
	}
	// Streams that start a request and fall silent: each is answered
	// with an error and dropped after the request timeout; none holds the
	// switch, and the connection may open more than its stream limit over
	// time.
	// 1,000 of them, four times the per-connection stream limit: opening
	// more waits for the switch to drop the earlier ones.
	var strs []*quic.Stream
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := 0; i < 1000; i++ {
		str, err := c.OpenStreamSync(ctx)
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		str.Write([]byte{0}) // one byte of a frame header
		strs = append(strs, str)
		if i == 100 {
			healthy(t, site) // others are served meanwhile
		}
	}
	for i, str := range strs {
		str.SetReadDeadline(time.Now().Add(10 * time.Second))
		typ, payload, err := wire.ReadFrame(str, wire.DefaultMaxFrame)
		if k := errKind(typ, payload, err); k != fault.Invalid {
			t.Fatalf("silent stream %d: %v", i, k)
		}
	}
	// The same connection still works for a proper request.
	raw, _ := wire.Marshal(wire.AuditCheckpointRequest{})
	typ, _, err := request(t, c, append(frameHeader(uint32(2+len(raw)), byte(wire.TAuditCheckpoint)), raw...), true)
	if err != nil || typ != wire.TAuditCheckpoints {
		t.Fatalf("a proper request after the garbage: %s %v", typ, err)
	}
	healthy(t, site)
}

// A terminal that acknowledges a delivery it never got is disconnected and
// audited; the telegram it was sent stays undelivered until a terminal
// stores and acknowledges it for real.
func TestAckForADeliveryNeverMade(t *testing.T) {
	site := daemontest.Start(t)
	id := site.Send("HN.UBND", tg("NA.TU", telegram.Immediate, "x"))
	c, str := rawSubscribe(t, site, "NA.TU")
	var d wire.Deliver
	if err := wire.ReadExpect(str, wire.DefaultMaxFrame, wire.TDeliver, &d); err != nil || d.Header.ID != id {
		t.Fatalf("deliver %v %v", d.Header.ID, err)
	}
	wire.WriteFrame(str, wire.TAck, wire.Ack{Tag: d.Tag + 1000}) // a tag never handed out
	select {
	case <-c.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the connection stayed open after a bogus acknowledgement")
	}
	if n := securityEntries(t, site, "acknowledgement for a delivery never made"); n != 1 {
		t.Fatalf("%d audit entries, want 1", n)
	}
	if ds, _ := site.Server.Store().Delivery(id, "NA.TU"); !ds.Pending() {
		t.Fatalf("the telegram counts as delivered: %+v", ds)
	}
	got := site.Receive("NA.TU", inbox)
	if len(got.Telegrams) != 1 || got.Telegrams[0].Header.ID != id {
		t.Fatalf("the real terminal got %d telegrams", len(got.Telegrams))
	}
}

// Each limit refuses what is over it with a clear error, and the switch
// goes on serving the others.
func TestLimits(t *testing.T) {
	site := daemontest.StartWith(t, t.TempDir(), nil, func(c *daemon.Config) {
		c.Limits.FilingRate = 10 // burst 20
		c.Limits.MaxSessions = 3
	})
	// Filing rate, per agency: a batch over the burst is refused whole.
	batch := make([]client.Telegram, 25)
	for i := range batch {
		batch[i] = client.Telegram{To: []telegram.Address{"NA.TU"}, Body: []byte("x")}
	}
	hn := site.Dial("HN.UBND")
	if _, err := hn.SendBatch(context.Background(), batch); !fault.Is(fault.Unavailable, err) || !strings.Contains(err.Error(), "filing rate") {
		t.Fatalf("a batch over the filing rate: %v", err)
	}
	if n := securityEntries(t, site, "over 10 per second"); n != 1 {
		t.Fatalf("%d audit entries for the rate refusal, want 1", n)
	}
	if _, err := hn.SendBatch(context.Background(), batch[:15]); err != nil {
		t.Fatalf("a batch within the burst: %v", err)
	}
	// One more within the burst but over what is left of it: refused with
	// a retry-after hint, and the client library files it again, backing
	// off, until the rate lets it through. Without retrying it is refused.
	hn.RetryFor = -1
	if _, err := hn.SendBatch(context.Background(), batch[:15]); !fault.Is(fault.Unavailable, err) || fault.RetryAfter(err) == 0 {
		t.Fatalf("over what is left of the burst, not retrying: %v (retry after %v)", err, fault.RetryAfter(err))
	}
	hn.RetryFor = 0 // the default
	res, err := hn.SendBatch(context.Background(), batch[:15])
	if err != nil || len(res) != 15 {
		t.Fatalf("over what is left of the burst, retrying: %d results, %v", len(res), err)
	}
	for i, r := range res {
		if r.Err != nil || r.ID.IsZero() {
			t.Fatalf("filing %d after retrying: %+v", i, r)
		}
	}
	// Another agency has its own budget.
	tw := site.Dial("TW.VPTW")
	if _, err := tw.Send(context.Background(), tg("NA.TU", telegram.Flash, "other agency")); err != nil {
		t.Fatal(err)
	}
	// Sessions: the switch holds at most 3 (HN.UBND's and TW.VPTW's are
	// two; a connection that just closed may still be counted for a
	// moment, so the third is made sure of).
	third := site.Dial("NA.TU")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, _, err := third.AuditCheckpoint(context.Background()); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("a third session: %v", err)
		}
		third.Close()
		third = site.Dial("NA.TU")
	}
	f, _ := certs.LoadFolder(site.IDDir("CP.VPCP"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if c, err := client.Dial(ctx, f); err == nil {
		_, err = c.Send(ctx, tg("NA.TU", telegram.Routine, "x"))
		c.Close()
		if err == nil || !strings.Contains(err.Error(), "session limit") {
			t.Fatalf("a fourth session: %v", err)
		}
	}
	third.Close()
	// Once the switch has seen the close, there is room again.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := client.Dial(ctx, f)
		if err == nil {
			_, err = c.Send(ctx, tg("NA.TU", telegram.Routine, "room again"))
			c.Close()
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no room after a session closed: %v", err)
		}
	}
}

// Handshakes per source address: over the rate, refused before any
// certificate work, and audited aggregated (never more than once a second).
func TestHandshakeRate(t *testing.T) {
	site := daemontest.StartWith(t, t.TempDir(), nil, func(c *daemon.Config) { c.Limits.HandshakeRate = 2 }) // burst 4
	refused, start := 0, time.Now()
	const tries = 20
	for i := 0; i < tries; i++ {
		c, err := rawDial(t, site, "HN.UBND", nil)
		if err != nil {
			refused++
			continue
		}
		c.CloseWithError(0, "")
	}
	// The bucket allows its burst of 4 and 2 more each second that passed;
	// refusals are audited once a second at most.
	elapsed := time.Since(start).Seconds()
	allowed := 4 + int(math.Ceil(2*elapsed))
	if refused < tries-allowed || refused == 0 {
		t.Fatalf("%d of %d rapid handshakes refused, want at least %d (burst 4, 2 per second)", refused, tries, tries-allowed)
	}
	if n := securityEntries(t, site, "handshakes from 127.0.0.1 over 2 per second"); n < 1 || n > int(math.Ceil(elapsed))+1 {
		t.Fatalf("%d audit entries for a %.1f s handshake flood, want one a second at most", n, elapsed)
	}
	time.Sleep(2 * time.Second)
	healthy(t, site)
}

// An expired certificate is refused at the handshake like one from another
// CA, with the reason audited.
func TestExpiredCertificateRefused(t *testing.T) {
	site := daemontest.Start(t)
	ca, err := certs.LoadCA(filepath.Join(site.Dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	iss, err := ca.Issue(certs.Request{Name: "short-lived", Role: certs.Terminal, Agency: "NA.TU", Clearance: telegram.Secret, Validity: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := certs.WriteFolder(site.IDDir("short"), iss, ca.PEM, site.Server.Addr().String()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if c, err := rawDial(t, site, "short", nil); err == nil {
		str, _ := c.OpenStreamSync(context.Background())
		wire.WriteFrame(str, wire.TAuditCheckpoint, wire.AuditCheckpointRequest{})
		str.Close()
		if _, _, err := wire.ReadFrame(str, wire.DefaultMaxFrame); err == nil {
			t.Fatal("an expired certificate was served")
		}
	}
	if n := securityEntries(t, site, "expired"); n != 1 {
		t.Fatalf("%d audit entries naming the expiry, want 1", n)
	}
	healthy(t, site)
}

// Acknowledgements sent together in one frame are taken together: one tag
// never handed out among them refuses the whole frame (disconnected,
// audited, nothing counted as delivered); a proper frame acknowledges
// every delivery it names.
func TestAcksInOneFrame(t *testing.T) {
	site := daemontest.Start(t)
	var ids []telegram.ID
	for i := 0; i < 3; i++ {
		ids = append(ids, site.Send("HN.UBND", tg("NA.TU", telegram.Immediate, "x")))
	}
	// receive3 subscribes as a raw terminal and reads the three deliveries
	// from their stream.
	receive3 := func() (*quic.Conn, *quic.Stream, []uint64) {
		c, str := rawSubscribe(t, site, "NA.TU")
		var tags []uint64
		for range ids {
			var d wire.Deliver
			if err := wire.ReadExpect(str, wire.DefaultMaxFrame, wire.TDeliver, &d); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(str, make([]byte, d.Header.BodyLen)); err != nil {
				t.Fatal(err)
			}
			tags = append(tags, d.Tag)
		}
		return c, str, tags
	}
	c, str, tags := receive3()
	wire.WriteFrame(str, wire.TAck, wire.Ack{Tag: tags[0], More: []uint64{tags[1], tags[2] + 1000}})
	select {
	case <-c.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the connection stayed open after a frame with a bogus acknowledgement")
	}
	if n := securityEntries(t, site, "acknowledgement for a delivery never made"); n != 1 {
		t.Fatalf("%d audit entries, want 1", n)
	}
	for _, id := range ids {
		if ds, _ := site.Server.Store().Delivery(id, "NA.TU"); !ds.Pending() {
			t.Fatalf("%s counts as delivered: %+v", id, ds)
		}
	}
	c, str, tags = receive3()
	defer c.CloseWithError(0, "")
	wire.WriteFrame(str, wire.TAck, wire.Ack{Tag: tags[0], More: tags[1:]})
	deadline := time.Now().Add(10 * time.Second)
	for _, id := range ids {
		for {
			ds, _ := site.Server.Store().Delivery(id, "NA.TU")
			if ds.Status == telegram.Delivered {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not delivered after one frame acknowledged all three: %+v", id, ds)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if n := securityEntries(t, site, "acknowledgement for a delivery never made"); n != 1 {
		t.Fatalf("%d audit entries after the proper frame, want still 1", n)
	}
}

// rawSubscribe connects as name without the client library, subscribes
// to its inbox and returns the first delivery stream the switch opens.
func rawSubscribe(t *testing.T, site *daemontest.Site, name string) (*quic.Conn, *quic.Stream) {
	t.Helper()
	c, err := rawDial(t, site, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := c.OpenStreamSync(context.Background())
	wire.WriteFrame(sub, wire.TSubscribe, wire.Subscribe{Inbox: true})
	var ok wire.Subscribed
	if err := wire.ReadExpect(sub, wire.DefaultMaxFrame, wire.TSubscribed, &ok); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	str, err := c.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return c, str
}

// A terminal that refuses a delivery it never got, or refuses one with a
// reason that is not one, is disconnected; neither settles anything (the
// first is audited as an acknowledgement would be), and the telegram it
// was sent is still delivered to a terminal that stores it.
func TestRejectForADeliveryNeverMade(t *testing.T) {
	site := daemontest.Start(t)
	id := site.Send("HN.UBND", tg("NA.TU", telegram.Immediate, "x"))
	for _, bad := range []func(tag uint64) wire.Reject{
		func(tag uint64) wire.Reject { return wire.Reject{Tag: tag + 1000, Reason: "signature"} }, // a tag never handed out
		func(tag uint64) wire.Reject { return wire.Reject{Tag: tag, Reason: "bored"} },            // not a reason
	} {
		c, str := rawSubscribe(t, site, "NA.TU")
		var d wire.Deliver
		if err := wire.ReadExpect(str, wire.DefaultMaxFrame, wire.TDeliver, &d); err != nil || d.Header.ID != id {
			t.Fatalf("deliver %v %v", d.Header.ID, err)
		}
		wire.WriteFrame(str, wire.TReject, bad(d.Tag))
		select {
		case <-c.Context().Done():
		case <-time.After(10 * time.Second):
			t.Fatal("the connection stayed open after a bogus refusal")
		}
		if ds, _ := site.Server.Store().Delivery(id, "NA.TU"); !ds.Pending() {
			t.Fatalf("a bogus refusal settled the telegram: %+v", ds)
		}
	}
	if n := securityEntries(t, site, "acknowledgement for a delivery never made"); n != 1 {
		t.Fatalf("%d audit entries, want 1", n)
	}
	got := site.Receive("NA.TU", inbox)
	if len(got.Telegrams) != 1 || got.Telegrams[0].Header.ID != id {
		t.Fatalf("the real terminal got %d telegrams", len(got.Telegrams))
	}
}
