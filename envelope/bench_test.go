package envelope

import (
	"fmt"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/telegram"
)

// The CPU a telegram costs each side: the sender seals and signs, the
// switch parses and matches the signed header (no public-key work), an
// addressee verifies and opens its copy. Bodies of 1 KiB and 1 MiB, to 1
// and 10 addressee agencies.
func BenchmarkE2E(b *testing.B) {
	names := []telegram.Address{"TW.VPTW"}
	for i := range 10 {
		names = append(names, telegram.Address(fmt.Sprintf("NA.A%02d", i)))
	}
	t := &testing.T{}
	_, ps, d := setup(t, names...)
	for _, size := range []int{1 << 10, 1 << 20} {
		for _, n := range []int{1, 10} {
			p := Plain{Fields: Fields{From: "TW.VPTW", To: names[1 : 1+n], Precedence: telegram.Routine, Classification: telegram.Secret}, Content: Content{Body: make([]byte, size)}}
			to := map[telegram.Address]*Cert{}
			for _, a := range names[:1+n] {
				to[a], _ = d.Current(a, time.Now())
			}
			env, _, err := Seal(p, ps["TW.VPTW"].key, to)
			if err != nil {
				b.Fatal(err)
			}
			h := telegram.Header{From: p.From, To: p.To, Precedence: p.Precedence, Classification: p.Classification, FiledAt: time.Now()}
			tag := fmt.Sprintf("body=%dKiB/to=%d", size>>10, n)
			b.Run("seal/"+tag, func(b *testing.B) {
				b.SetBytes(int64(size))
				for b.Loop() {
					if _, _, err := Seal(p, ps["TW.VPTW"].key, to); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("switch/"+tag, func(b *testing.B) {
				b.SetBytes(int64(size))
				f := FieldsOf(h)
				for b.Loop() {
					e, err := Parse(env)
					if err != nil || e.Match(f) != nil {
						b.Fatal(err)
					}
					_ = e.Digest()
				}
			})
			b.Run("open/"+tag, func(b *testing.B) {
				b.SetBytes(int64(size))
				mine := []*AgencyKey{ps[names[1]].key}
				for b.Loop() {
					if _, err := Open(env, h, names[1], mine, d); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
