package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

func TestRoundTrip(t *testing.T) {
	in := FileRequest{Filings: []Filing{{To: []telegram.Address{"NA.UBND"}, Info: []telegram.Address{"NA.TU"},
		Precedence: telegram.Flash, Classification: telegram.Secret, Subject: "Hỏa tốc", Ref: "R1", BodyLen: 42}}}
	var buf bytes.Buffer
	if err := WriteFrame(&buf, TFile, in); err != nil {
		t.Fatal(err)
	}
	var out FileRequest
	if err := ReadExpect(&buf, DefaultMaxFrame, TFile, &out); err != nil {
		t.Fatal(err)
	}
	f := out.Filings[0]
	if f.Subject != "Hỏa tốc" || f.Precedence != telegram.Flash || f.BodyLen != 42 || f.To[0] != "NA.UBND" || f.Info[0] != "NA.TU" {
		t.Fatalf("round trip: %+v", f)
	}
}

func TestErrorFrameBecomesFault(t *testing.T) {
	var buf bytes.Buffer
	WriteFrame(&buf, TError, ErrorOf(fault.E("file", fault.NotExist, "unknown addressee XX")))
	err := ReadExpect(&buf, DefaultMaxFrame, TFileReply, &FileReply{})
	if fault.KindOf(err) != fault.NotExist {
		t.Fatalf("got %v, want a NotExist fault", err)
	}
}

func frame(length uint32, version, typ byte, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, length)
	return append(append(b, version, typ), payload...)
}

func TestRejects(t *testing.T) {
	good, _ := Marshal(Ack{Tag: 1})
	cases := []struct {
		name string
		in   []byte
		kind fault.Kind
	}{
		{"oversize declared before reading", frame(DefaultMaxFrame+1, Version, byte(TAck), nil), fault.TooLarge},
		{"wrong version", frame(uint32(2+len(good)), 9, byte(TAck), good), fault.Invalid},
		{"shorter than header", frame(1, Version, byte(TAck), nil), fault.Invalid},
		{"truncated payload", frame(100, Version, byte(TAck), good), fault.Invalid},
		{"truncated length", []byte{0, 0}, fault.Invalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ReadFrame(bytes.NewReader(tc.in), DefaultMaxFrame)
			if fault.KindOf(err) != tc.kind {
				t.Fatalf("got %v (kind %s), want kind %s", err, fault.KindOf(err), tc.kind)
			}
		})
	}
	// A clean end before a frame is io.EOF, not an error to report.
	if _, _, err := ReadFrame(bytes.NewReader(nil), DefaultMaxFrame); !errors.Is(err, io.EOF) {
		t.Fatalf("empty input: %v, want io.EOF", err)
	}
}

func TestDecodeLimits(t *testing.T) {
	// An unknown field is refused.
	b, _ := Marshal(map[int]int{1: 1, 99: 2})
	if err := Decode(TAck, b, &Ack{}); fault.KindOf(err) != fault.Invalid {
		t.Fatalf("unknown field: %v", err)
	}
	// Duplicate map keys are refused.
	dup := []byte{0xa2, 0x01, 0x01, 0x01, 0x02} // {1: 1, 1: 2}
	if err := Decode(TAck, dup, &Ack{}); err == nil {
		t.Fatal("duplicate keys accepted")
	}
	// Indefinite-length arrays are refused.
	indef := []byte{0xa1, 0x01, 0x9f, 0xff} // {1: [_ ]}
	if err := Decode(TFile, indef, &FileRequest{}); err == nil {
		t.Fatal("indefinite length accepted")
	}
	// Too many array elements are refused.
	big := make([]Filing, 5000)
	b, _ = Marshal(FileRequest{Filings: big})
	if err := Decode(TFile, b, &FileRequest{}); err == nil {
		t.Fatal("5000-element array accepted")
	}
}

// The age histogram's buckets, at their bounds: a bucket holds ages from
// its lower bound up to, not including, its upper one.
func TestAgeBuckets(t *testing.T) {
	for _, c := range []struct {
		age  time.Duration
		want int
	}{{0, 0}, {59 * time.Second, 0}, {time.Minute, 1}, {5*time.Minute - 1, 1}, {5 * time.Minute, 2}, {10 * time.Minute, 3},
		{30 * time.Minute, 4}, {time.Hour, 5}, {3 * time.Hour, 6}, {6*time.Hour - 1, 6}, {6 * time.Hour, 7}, {100 * time.Hour, 7}} {
		if got := AgeBucket(c.age); got != c.want {
			t.Errorf("AgeBucket(%s) = %d, want %d", c.age, got, c.want)
		}
	}
}
