package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4/table"
	"github.com/dienbao/dienbao/switch/audit"
	"go.uber.org/zap"
)

// ScrubResult says what a scrub did.
type ScrubResult struct {
	Checked int      // tables checked now
	Damaged []string // table files that failed their check (newly found)
}

// scrubState is the scrub's memory: one at a time, and each damaged table
// reported once.
type scrubState struct {
	run     sync.Mutex
	mu      sync.Mutex        // guards damaged
	damaged map[string]string // table file → what failed
}

// scrubRate bounds how fast a scrub reads tables, so that it leaves the
// disk to the commits that ACCEPTED waits for.
const scrubRate = 256 << 20 // bytes per second

// Scrub checks the store's live tables, whole, while the switch runs:
// those its record of checked tables does not hold (tables.go), or every
// one if full. A table that passes is added to the record, so the next
// start need not check it; a damaged one is logged and audited
// (integrity) once, and stays listed in DamagedTables: Badger still checks
// each block it reads, so what is damaged is refused when read, never
// served, but the operator must restore the store from a backup.
func (s *Store) Scrub(ctx context.Context, full bool) (ScrubResult, error) {
	var res ScrubResult
	s.scrub.run.Lock()
	defer s.scrub.run.Unlock()
	dir := s.opts.Dir
	checked := loadChecked(dir)
	o := BadgerOptions(dir)
	live := map[uint64]bool{}
	tables := s.db.Tables()
	sort.Slice(tables, func(i, j int) bool { return tables[i].ID < tables[j].ID })
	for _, ti := range tables {
		live[ti.ID] = true
		if ctx.Err() != nil {
			break
		}
		st, read, err := checkTable(dir, ti.ID, checked, o.Compression, o, full)
		if errors.Is(err, fs.ErrNotExist) {
			continue // compacted away meanwhile
		}
		if err == nil && !read {
			continue // checked before, unchanged
		}
		res.Checked++
		if err != nil {
			base := filepath.Base(table.NewFilename(ti.ID, dir))
			if s.damaged(base, err) {
				res.Damaged = append(res.Damaged, base)
			}
			delete(checked, ti.ID)
			continue
		}
		checked[ti.ID] = st
		select { // pace: st.Size bytes at scrubRate
		case <-ctx.Done():
		case <-time.After(time.Duration(st.Size) * time.Second / scrubRate):
		}
	}
	for id := range checked {
		if !live[id] {
			delete(checked, id)
		}
	}
	return res, saveChecked(dir, checked)
}

// damaged records that table file base failed its check, and reports it
// (log and audit) if it is new; it says whether it was.
func (s *Store) damaged(base string, err error) bool {
	s.scrub.mu.Lock()
	_, known := s.scrub.damaged[base]
	if !known {
		if s.scrub.damaged == nil {
			s.scrub.damaged = map[string]string{}
		}
		s.scrub.damaged[base] = err.Error()
	}
	s.scrub.mu.Unlock()
	if known {
		return false
	}
	why := fmt.Sprintf("the store's table %s failed its check in the scrub (%v): what it holds is refused when read; restore the store from a backup", base, err)
	s.log.Error("damaged table", zap.String("table", base), zap.Error(err))
	if aerr := s.Record(AuditEntry{Actor: "switch", Event: audit.Integrity, Reason: why}); aerr != nil {
		s.log.Error("cannot audit a damaged table", zap.Error(aerr))
	}
	return true
}

// DamagedTables lists the table files a scrub found damaged.
func (s *Store) DamagedTables() []string {
	s.scrub.mu.Lock()
	defer s.scrub.mu.Unlock()
	out := make([]string, 0, len(s.scrub.damaged))
	for name := range s.scrub.damaged {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}
