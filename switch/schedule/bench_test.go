package schedule

import (
	"testing"

	"github.com/dienbao/dienbao/switch/telegram"
)

// BenchmarkNextByPrecedence measures handing out the next telegram from
// queues holding all four precedences and two classifications: each op
// is one Next (precedence order, clearance, window) and its
// acknowledgement, with the queue read from an in-memory loader as it
// goes (64 entries per read).
func BenchmarkNextByPrecedence(b *testing.B) {
	const n = 4096
	fill := func() *Agency {
		q := &memQueue{}
		for seq := uint64(1); seq <= n; seq++ {
			p := telegram.Precedences[seq%4]
			c := telegram.Classification(1 + seq%2)
			q.add(seq, p, c)
		}
		return NewAgency(q.load, [4][4]uint64{}, 0)
	}
	a := fill()
	left := n
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if left == 0 {
			b.StopTimer()
			a = fill()
			left = n
			b.StartTimer()
		}
		it, res, err := a.Next(telegram.TopSecret, none, 32)
		if err != nil || res != Got {
			b.Fatalf("Next = %v, %v", res, err)
		}
		if left == n && it.Prec != telegram.Flash {
			b.Fatalf("first hand-out is %v, want FLASH", it.Prec)
		}
		a.Acked(it)
		left--
	}
}
