package store

import (
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/golden"
	"github.com/dienbao/dienbao/switch/telegram"
)

// The records the store writes (before sealing), in hex: a change to the
// disk format shows as a changed golden file, and every record still
// decodes to what was encoded.
func TestRecordsGolden(t *testing.T) {
	id, err := telegram.ParseID("01M8P0BKPQ0CBJ74TKXWK7SBRK")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	records := []struct {
		name string
		v    any
	}{
		{"header", &telegram.Header{ID: id, From: "HN.UBND", To: []telegram.Address{"NA.TU", "HUE.UBND"}, Info: []telegram.Address{"BO.QP"},
			Precedence: telegram.Flash, Classification: telegram.Confidential, Subject: "Hỏa tốc", FiledAt: at, Ref: "CV-12",
			BodyLen: 1024, ExpiresAt: at.Add(time.Hour), OverdueAt: at.Add(10 * time.Minute)}},
		{"header, relayed", &telegram.Header{ID: id, From: "TW.VPTW", To: []telegram.Address{"NA.TU"},
			Precedence: telegram.Immediate, Classification: telegram.Secret, FiledAt: at, BodyLen: 10,
			Trace: []telegram.Hop{{Switch: "TW-SW", At: at}, {Switch: "NA-SW", At: at.Add(40 * time.Millisecond)}}}},
		{"delivery state, pending", &DeliveryState{Seq: 42}},
		{"delivery state, held after a cut attempt", &DeliveryState{Seq: 42, Attempts: 2, Cut: 1, Held: true, Overdue: true}},
		{"delivery state, delivered", &DeliveryState{Status: telegram.Delivered, At: at, Terminal: "NA.TU/terminal 1", Seq: 42, Attempts: 1}},
		{"delivery state, relayed", &DeliveryState{At: at, Via: "HN-SW", Seq: 42, Attempts: 1}},
		{"delivery state, parked", &DeliveryState{Status: telegram.NotDelivered, At: at, Reason: "parked", Seq: 42, Attempts: 5}},
		{"receipt", &telegram.Receipt{ID: id, Addressee: "NA.TU", Status: telegram.Delivered, At: at, Terminal: "NA.TU/terminal 1"}},
	}
	var out strings.Builder
	for _, r := range records {
		b, err := encodeRecord(r.v)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "%s\n%s\n", r.name, hex.EncodeToString(b))
		back := reflect.New(reflect.TypeOf(r.v).Elem()).Interface()
		if err := decodeRecord(b, back); err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		if !reflect.DeepEqual(back, r.v) {
			t.Fatalf("%s: decoded %+v, encoded %+v", r.name, back, r.v)
		}
	}
	golden.Check(t, "records.hex", []byte(out.String()))
}

// A record with a field this switch does not know is refused, not read in
// part.
func TestRecordWithUnknownFieldRefused(t *testing.T) {
	b, err := encodeRecord(map[int]any{1: 0, 99: "from a newer switch"})
	if err != nil {
		t.Fatal(err)
	}
	var d DeliveryState
	if err := decodeRecord(b, &d); err == nil {
		t.Fatal("a record with an unknown field decoded")
	}
}
