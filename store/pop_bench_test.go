package store

import (
	"os"
	"strconv"
	"sync"
	"testing"

	"github.com/dienbao/dienbao/switch/telegram"
)

// BenchmarkPopAfterDeliveries measures taking the next entry of a queue
// that has had many entries delivered (their tombstones linger in the
// LSM tree): from the remembered head, as the switch does, and from the
// start of the queue, as it must never do. DIENBAO_POP_DELIVERED sets how
// many deliveries precede it (default 100,000).
func BenchmarkPopAfterDeliveries(b *testing.B) {
	n := 100_000
	if s := os.Getenv("DIENBAO_POP_DELIVERED"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	dir := b.TempDir()
	s, err := Open(Options{Dir: dir, Keyring: testRing(b, dir)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	q := SubQueue{Agency: "NA.TU", Prec: telegram.Routine, Class: telegram.Unclassified}
	fill := func(count int) []FileResult {
		var out []FileResult
		for done := 0; done < count; done += 1000 {
			fs := make([]*Filing, min(1000, count-done))
			for i := range fs {
				fs[i] = &Filing{Header: telegram.Header{From: "HN.UBND", To: []telegram.Address{"NA.TU"},
					Precedence: telegram.Routine, Classification: telegram.Unclassified}, Body: []byte("x")}
			}
			res, _ := s.FileBatch(fs)
			out = append(out, res...)
		}
		return out
	}
	fill(n)
	var head uint64 = 1
	for {
		es, _ := s.ScanQueue(q, head, 1000)
		if len(es) == 0 {
			break
		}
		// All but the last concurrently (they share fsyncs), then the last,
		// which persists the head.
		var wg sync.WaitGroup
		for _, e := range es[:len(es)-1] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.Ack(Ack{Queue: q, Seq: e.Seq, ID: e.ID, Terminal: "t"}); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
		last := es[len(es)-1]
		head = last.Seq + 1
		if _, err := s.Ack(Ack{Queue: q, Seq: last.Seq, ID: last.ID, Terminal: "t", Head: head}); err != nil {
			b.Fatal(err)
		}
	}
	fill(10) // what is left to pop
	if h := queueHead(s, q); h != head {
		b.Fatalf("persisted head %d, want %d", h, head)
	}
	b.Run("from-head", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if es, _ := s.ScanQueue(q, head, 1); len(es) != 1 {
				b.Fatal("nothing at the head")
			}
		}
	})
	b.Run("from-start", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if es, _ := s.ScanQueue(q, 0, 1); len(es) != 1 {
				b.Fatal("nothing in the queue")
			}
		}
	})
}
