package store

import (
	"sync"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/telegram"
)

func benchFile(b *testing.B, writers int, sealed bool) {
	dir := b.TempDir()
	opts := Options{Dir: dir}
	if sealed {
		opts.Keyring = testRing(b, dir)
	}
	s, err := Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	body := make([]byte, 1024)
	concurrently(b, writers, "filings/s", func() error {
		_, err := s.File(&Filing{Header: hdr("HN.UBND", []telegram.Address{"NA.TU"}, telegram.Routine, ""), Body: body})
		return err
	})
}

// concurrently runs do b.N times in all, from writers goroutines, and
// reports the rate in unit.
func concurrently(b *testing.B, writers int, unit string, do func() error) {
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N / writers
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				if err := do(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(per*writers)/b.Elapsed().Seconds(), unit)
}

// BenchmarkCommitSingle: one writer, so one filing per fsync.
func BenchmarkCommitSingle(b *testing.B) { benchFile(b, 1, true) }

// BenchmarkCommitGrouped: 128 concurrent writers share fsyncs.
func BenchmarkCommitGrouped(b *testing.B) { benchFile(b, 128, true) }

// The same two without encryption at rest (no sealing, no Badger
// encryption), to measure its cost side by side.
func BenchmarkCommitSinglePlain(b *testing.B)  { benchFile(b, 1, false) }
func BenchmarkCommitGroupedPlain(b *testing.B) { benchFile(b, 128, false) }

// BenchmarkAuditAppend: audit entries alone, 128 concurrent writers (group
// commit), each a telegram event with an ID, a sender and an addressee: a
// leaf, three index keys and the tree.
func BenchmarkAuditAppend(b *testing.B) {
	dir := b.TempDir()
	s, err := Open(Options{Dir: dir, Keyring: testRing(b, dir)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ids := telegram.NewIDGen()
	concurrently(b, 128, "entries/s", func() error {
		return s.Record(AuditEntry{Actor: "NA.TU/terminal 1", Event: AuditDelivered, ID: ids.New(time.Now()), From: "HN.UBND",
			To: "NA.TU", Precedence: telegram.Routine, Classification: telegram.Secret})
	})
}
