package store

import (
	"bytes"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/audit"

	"github.com/dienbao/dienbao/switch/telegram"
)

// Disk use follows what is still kept: rounds of large telegrams, each
// filed and delivered in full, then purged from the journal at the end of
// a short retention, leave the store no bigger after a reclaim than after
// the first round, also after a restart, where without reclaiming it
// grows by each round's bodies (the value log is never shrunk by Badger
// itself).
func TestDiskUseFallsBackAfterDelivery(t *testing.T) {
	dir := t.TempDir()
	retain := func(o *Options) { o.Retention = time.Millisecond }
	s, _ := openWith(t, dir, retain)
	defer func() { s.Close() }()
	q := SubQueue{Agency: "NA.TU", Prec: telegram.Routine, Class: telegram.Secret}
	const rounds, perRound, size = 6, 300, 100 << 10 // 30 MB of bodies a round
	total := func() int64 {
		use, err := s.DiskUsage()
		if err != nil {
			t.Fatal(err)
		}
		return use["lsm"] + use["vlog"] + use["wal"] + use["other"]
	}
	var after []int64
	for round := range rounds {
		for i := range perRound {
			_, err := s.File(&Filing{Header: hdr("HN.UBND", []telegram.Address{"NA.TU"}, telegram.Routine, ""),
				Body: bytes.Repeat([]byte{byte(round), byte(i)}, size/2)})
			if err != nil {
				t.Fatal(err)
			}
		}
		es, err := s.ScanQueue(q, 0, perRound+1)
		if err != nil || len(es) != perRound {
			t.Fatalf("round %d: %d queued (%v), want %d", round, len(es), err, perRound)
		}
		for _, e := range es {
			if _, err := s.Ack(Ack{Queue: q, Seq: e.Seq, ID: e.ID, Terminal: "t", Head: e.Seq + 1}); err != nil {
				t.Fatal(err)
			}
		}
		for {
			n, err := s.PurgeDue(time.Now().Add(time.Second), 1000)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
		}
		grown := total()
		if _, err := s.Reclaim(true); err != nil {
			t.Fatal(err)
		}
		after = append(after, total())
		t.Logf("round %d: %d MiB on disk after delivery, %d MiB after reclaiming", round, grown>>20, after[round]>>20)
	}
	// Without reclaiming, the last round would leave about rounds × 30 MB.
	// With it, what stays is at most the value-log file being written and
	// one more, and the tree.
	limit := int64(3*ValueLogFileSize + 16<<20)
	for round, use := range after {
		if use > limit {
			t.Errorf("after round %d: %d MiB on disk, want at most %d MiB", round, use>>20, limit>>20)
		}
	}
	s.Close()
	s, _ = openWith(t, dir, retain)
	if use := total(); use > limit {
		t.Errorf("after a restart: %d MiB on disk, want at most %d MiB", use>>20, limit>>20)
	}
	if es, err := s.QueryAudit(AuditQuery{Event: audit.Purged, Limit: MaxQueryLimit}); err != nil || len(es) != rounds*perRound {
		t.Errorf("%d purges audited (%v), want %d", len(es), err, rounds*perRound)
	}
}

// Filings made while a thorough reclaim flushes the memtables wait for it
// instead of failing: Badger refuses every write while it flushes on
// request (ErrBlockedWrites), which once failed commits on a filling disk.
func TestFilingDuringThoroughReclaim(t *testing.T) {
	s, _ := open(t, t.TempDir())
	defer s.Close()
	stop := make(chan struct{})
	reclaims := make(chan int)
	go func() {
		n := 0
		defer func() { reclaims <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Reclaim(true); err != nil {
				t.Error(err)
				return
			}
			n++
		}
	}()
	const filings = 150
	for i := range filings {
		_, err := s.File(&Filing{Header: hdr("HN.UBND", []telegram.Address{"NA.TU"}, telegram.Routine, ""),
			Body: bytes.Repeat([]byte{byte(i)}, 8<<10)})
		if err != nil {
			close(stop)
			<-reclaims
			t.Fatalf("filing %d during reclaims: %v", i, err)
		}
	}
	close(stop)
	if n := <-reclaims; n == 0 {
		t.Fatal("no reclaim ran during the filings")
	}
	q := SubQueue{Agency: "NA.TU", Prec: telegram.Routine, Class: telegram.Secret}
	if es, err := s.ScanQueue(q, 0, filings+1); err != nil || len(es) != filings {
		t.Fatalf("%d queued (%v), want %d", len(es), err, filings)
	}
}
