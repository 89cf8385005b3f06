package envelope

import (
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/telegram"
)

// FuzzParse feeds arbitrary bodies to what the switch runs on every sealed
// filing (Parse, Match, Digest): none may panic, and what parses has a
// complete signed header.
func FuzzParse(f *testing.F) {
	t := &testing.T{}
	_, ps, d := setup(t, "TW.VPTW", "NA.TU")
	p := Plain{Fields: Fields{From: "TW.VPTW", To: []telegram.Address{"NA.TU"}, Precedence: telegram.Flash, Classification: telegram.Secret}, Content: Content{Subject: "s", Body: []byte("b")}}
	to := map[telegram.Address]*Cert{}
	for _, a := range []telegram.Address{"TW.VPTW", "NA.TU"} {
		to[a], _ = d.Current(a, time.Now())
	}
	env, _, err := Seal(p, ps["TW.VPTW"].key, to)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(env)
	f.Add([]byte(Magic))
	f.Add([]byte(Magic + "\xa0"))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := Parse(body)
		if err != nil {
			return
		}
		if len(e.Signed().Content) != 32 || e.Digest() == "" {
			t.Fatal("parsed an incomplete envelope")
		}
		_ = e.Match(Fields{From: "TW.VPTW", To: []telegram.Address{"NA.TU"}})
	})
}
