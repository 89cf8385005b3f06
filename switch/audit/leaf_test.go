package audit

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/telegram"
)

// jsonLeaf is the reference: encoding/json with HTML escaping off, over
// the entry with invalid UTF-8 replaced.
func jsonLeaf(t testing.TB, e Entry) []byte {
	v := func(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
	e.Event, e.Actor, e.Reason = v(e.Event), v(e.Actor), v(e.Reason)
	e.From, e.To = telegram.Address(v(string(e.From))), telegram.Address(v(string(e.To)))
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	e.At = e.At.UTC()
	if err := enc.Encode(leaf{V: LeafVersion, Entry: e}); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func sampleEntry() Entry {
	return Entry{Index: 42, At: time.Date(2026, 11, 27, 8, 30, 0, 120000000, time.FixedZone("ICT", 7*3600)),
		Event: Delivered, Actor: "NA.TU/terminal 1", ID: telegram.NewIDGen().New(time.Now()), From: "HN.UBND", To: "NA.TU",
		Precedence: telegram.Flash, Classification: telegram.Confidential, Reason: "Đã nhận"}
}

func TestLeafIsCanonicalJSON(t *testing.T) {
	es := []Entry{sampleEntry(), {Event: SwitchStart, Actor: "dev switch"}, {Index: 1 << 62, Event: Security,
		Actor: "certificate \"x\" <y> & z\\", Reason: "tab\there\nnew \x01 \u2028 \u2029 bad \xff end 🙂"}}
	for _, e := range es {
		got, err := Leaf(e)
		if err != nil {
			t.Fatal(err)
		}
		if want := jsonLeaf(t, e); !bytes.Equal(got, want) {
			t.Fatalf("leaf\n got %s\nwant %s", got, want)
		}
	}
}

func FuzzLeaf(f *testing.F) {
	f.Add(uint64(7), int64(1764232200120000000), "delivered", "NA.TU/t", "HN.UBND", "NA.TU", 4, 2, "reason")
	f.Add(uint64(0), int64(0), "", "\x00\"\\\u2028\xff", "", "", 0, 0, "<&>")
	f.Fuzz(func(t *testing.T, index uint64, ns int64, event, actor, from, to string, prec, class int, reason string) {
		e := Entry{Index: index, At: time.Unix(0, ns), Event: event, Actor: actor, From: telegram.Address(from),
			To: telegram.Address(to), Precedence: telegram.Precedence(prec), Classification: telegram.Classification(class), Reason: reason}
		got, err := Leaf(e)
		if err != nil {
			return // refused: out-of-range precedence, classification or time
		}
		if want := jsonLeaf(t, e); !bytes.Equal(got, want) {
			t.Fatalf("leaf\n got %s\nwant %s", got, want)
		}
		back, err := ParseLeaf(got)
		if err != nil {
			t.Fatalf("ParseLeaf of a canonical leaf: %v", err)
		}
		again, _ := Leaf(back)
		if !bytes.Equal(again, got) {
			t.Fatalf("round trip changed the leaf:\n%s\n%s", got, again)
		}
	})
}
