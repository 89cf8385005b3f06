package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
	"go.uber.org/zap"
)

// FuzzHandlers sends every request type, with fuzzed payloads, through
// the real handlers of one running switch (real store, real sessions), as
// each role; whatever comes in, the switch answers or drops the stream and
// goes on serving: after each input a request on a new connection is
// answered. `go test` replays the seeds (a valid payload of every request
// type, and garbage); `go test -fuzz FuzzHandlers ./switch/server` explores.
func FuzzHandlers(f *testing.F) {
	enc := func(v any) []byte { b, _ := wire.Marshal(v); return b }
	id := telegram.ID{1, 2, 3}
	seeds := []struct {
		t       wire.Type
		payload []byte
	}{
		{wire.TFile, enc(wire.FileRequest{Filings: []wire.Filing{{To: []telegram.Address{"NA.TU"}, Precedence: telegram.Flash, Classification: telegram.Secret, BodyLen: 3}}})},
		{wire.TFile, enc(wire.FileRequest{Filings: []wire.Filing{{To: []telegram.Address{"\x01"}, BodyLen: 1 << 40}}})},
		{wire.TSubscribe, enc(wire.Subscribe{Inbox: true, Receipts: true})},
		{wire.TAck, enc(wire.Ack{Tag: 7})},
		{wire.TRotateKeys, enc(wire.RotateKeys{})},
		{wire.TAuditQuery, enc(wire.AuditQuery{Limit: -1, From: 9, To: 3})},
		{wire.TAuditQuery, enc(wire.AuditQuery{Agency: "NA.TU", Newest: true, Limit: 1 << 30})},
		{wire.TAuditExport, enc(wire.AuditExport{From: 1 << 62})},
		{wire.TAuditCheckpoint, enc(wire.AuditCheckpointRequest{All: true, After: 1 << 63})},
		{wire.TAuditProof, enc(wire.AuditProofRequest{ID: id})},
		{wire.TAuditConsistency, enc(wire.AuditConsistencyRequest{Size1: 5, Size2: 1 << 62})},
		{wire.TQueues, enc(wire.QueuesRequest{Overdue: -1})},
		{wire.TList, enc(wire.ListRequest{Limit: 1 << 30, State: "lost"})},
		{wire.TNotice, enc(wire.NoticeRequest{Post: &wire.Notice{Affects: "\x1b[2J", Text: "\x00"}})},
		{wire.TNotice, enc(wire.NoticeRequest{Close: 1 << 60})},
		{wire.TMoveQueue, enc(wire.MoveQueue{From: "NA.UBND", To: "NA.UBND"})},
		{wire.TList, enc(wire.ListRequest{Agency: "XX", Precedence: 9, OlderThan: -1})},
		{wire.TList, enc(wire.ListRequest{After: wire.ListCursor{ID: id, Addressee: "\x1b[2J"}, From: "NA.TU"})},
		{wire.TSessions, enc(wire.SessionsRequest{})},
		{wire.TShow, enc(wire.ShowRequest{ID: id})},
		{wire.TOperate, enc(wire.Operate{Action: "cancel", ID: id, Reason: "\x1b[2J"})},
		{wire.TOperate, enc(wire.Operate{Action: "hold_agency", Agency: "XX"})},
		{wire.TClock, enc(wire.ClockRequest{Confirm: true})},
		{wire.TRetrieve, enc(wire.RetrieveRequest{ID: id})},
		{wire.TResend, enc(wire.ResendRequest{ID: id, To: "\x01", Reason: "\x1b[2J"})},
		{wire.TJournal, enc(wire.JournalQuery{Limit: -5, Before: 1 << 63})},
		{wire.TJournal, enc(wire.JournalQuery{Agency: "NA.TU", Limit: 1 << 30})},
		{99, []byte{0xa0}},
		{wire.TAuditQuery, []byte{0xff, 0xff}},
	}
	for _, s := range seeds {
		for role := range uint8(3) {
			f.Add(byte(s.t), s.payload, role)
		}
	}
	// One switch for every input: it must survive them all.
	site := daemontest.StartWith(f, f.TempDir(), zap.NewNop(), func(c *daemon.Config) {
		c.Limits.RequestTimeout = daemon.Duration(200 * time.Millisecond)
		c.Limits.BodyTimeout = daemon.Duration(200 * time.Millisecond)
		c.Limits.HandshakeRate = 100000 // the fuzzer connects hundreds of times a second
		c.Limits.RetryAbove = 100000
	})
	f.Fuzz(func(t *testing.T, typ byte, payload []byte, role uint8) {
		name := []string{"HN.UBND", "operator", "auditor"}[role%3]
		c, err := rawDial(t, site, name, nil)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		if len(payload) > 1<<16 {
			payload = payload[:1<<16]
		}
		raw := append(frameHeader(uint32(2+len(payload)), typ), payload...)
		str, err := c.OpenStreamSync(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		str.Write(raw)
		str.Close()
		str.SetReadDeadline(time.Now().Add(5 * time.Second))
		wire.ReadFrame(str, 16<<20) // an answer, an error, or the stream's end: all fine
		c.CloseWithError(0, "")
		// The switch still answers.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		folder, err := certs.LoadFolder(site.IDDir("auditor"))
		if err != nil {
			t.Fatal(err)
		}
		cl, err := client.Dial(ctx, folder)
		if err != nil {
			t.Fatalf("after %s as %s: the switch no longer takes connections: %v", wire.Type(typ), name, err)
		}
		defer cl.Close()
		if _, _, err := cl.AuditCheckpoint(ctx); err != nil {
			t.Fatalf("after %s as %s: the switch no longer answers: %v", wire.Type(typ), name, err)
		}
	})
}
