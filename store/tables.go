package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/table"
	"github.com/dgraph-io/ristretto/v2/z"
	"github.com/dienbao/dienbao/switch/fault"
)

// Damaged tables. Badger checks a table's blocks when it opens it, but a
// damaged data block can make that check dereference nil in one of
// Badger's own goroutines (a panic nobody can recover), and a table whose
// checksum fails is dropped with a log line and the store opened without
// it: its telegrams, queue entries and audit entries gone. So the store
// checks the tables the manifest lists, itself, before Badger opens them,
// and refuses to open with a clear error naming a damaged table (restore
// the store from a backup). Tables the manifest does not list (left by a
// crash during a compaction) are Badger's to delete.
//
// Start-up in constant time. Checking every table at every start took
// 2.6 s with a million telegrams queued (2.6 GB of tables), growing with
// the backlog. A table is never rewritten once written, so the store keeps
// a record of the tables it has checked (their number, size and
// modification time, in a file beside the store folder, Dir+".checked"),
// and at start checks only those it has not: tables written since the
// last scrub, or changed since they were checked. Badger then verifies
// each block as it reads it (OnBlockRead), not whole tables at open. The
// scrub (Scrub, run by the switch in the background) checks the tables
// written since, adding them to the record, and once a day every table
// again, for damage that changes no size or time (a disk's bit rot); what
// it finds it reports, for the operator to restore from a backup.

// tableStamp is what the record keeps of a checked table.
type tableStamp struct {
	Size  int64 `json:"size"`
	MTime int64 `json:"mtime"` // Unix ns
}

func checkedPath(dir string) string { return filepath.Clean(dir) + ".checked" }

// loadChecked reads the record of checked tables (empty if none, or
// unreadable: then every table is checked again).
func loadChecked(dir string) map[uint64]tableStamp {
	m := map[uint64]tableStamp{}
	if b, err := os.ReadFile(checkedPath(dir)); err == nil {
		if json.Unmarshal(b, &m) != nil {
			m = map[uint64]tableStamp{}
		}
	}
	return m
}

func saveChecked(dir string, m map[uint64]tableStamp) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return writeSynced(checkedPath(dir), b)
}

func stampOf(name string) (tableStamp, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return tableStamp{}, err
	}
	return tableStamp{Size: fi.Size(), MTime: fi.ModTime().UnixNano()}, nil
}

// verifyTables checks the tables the manifest in dir lists that the
// record does not hold as checked, and returns how many it checked.
func verifyTables(dir string, o badger.Options) (int, error) {
	fp, err := os.Open(filepath.Join(dir, badger.ManifestFilename))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil // a new store
	}
	if err != nil {
		return 0, fault.E("store.open", fault.Internal, "cannot read the store's manifest", err)
	}
	m, _, err := badger.ReplayManifestFile(fp, o.ExternalMagicVersion, o)
	fp.Close()
	if err != nil {
		return 0, fault.E("store.open", fault.Integrity, "the store's manifest is damaged; restore the store from a backup", err)
	}
	checked := loadChecked(dir)
	kept := make(map[uint64]tableStamp, len(m.Tables))
	n := 0
	for id, tm := range m.Tables {
		st, read, err := checkTable(dir, id, checked, tm.Compression, o, false)
		if err != nil {
			return n, fault.E("store.open", fault.Integrity,
				fmt.Sprintf("the store's table %s is damaged (%v); the switch does not start without it: restore the store from a backup", filepath.Base(table.NewFilename(id, dir)), err))
		}
		kept[id] = st
		if read {
			n++
		}
	}
	if n > 0 || len(kept) != len(checked) {
		if err := saveChecked(dir, kept); err != nil {
			return n, fault.E("store.open", fault.Internal, "cannot record the store's checked tables", err)
		}
	}
	return n, nil
}

// checkTable checks table id in dir whole, unless the record of checked
// tables holds it unchanged and force is false. It returns the table's
// stamp and whether it read the table.
func checkTable(dir string, id uint64, checked map[uint64]tableStamp, comp options.CompressionType, o badger.Options, force bool) (tableStamp, bool, error) {
	name := table.NewFilename(id, dir)
	st, err := stampOf(name)
	if err != nil {
		return st, false, err
	}
	if !force && checked[id] == st {
		return st, false, nil
	}
	return st, true, verifyTable(name, comp, o)
}

// verifyTable opens one table read-only and checks all its blocks,
// turning a panic in Badger's table code into an error.
func verifyTable(name string, compression options.CompressionType, o badger.Options) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("unreadable: %v", r)
		}
	}()
	mf, err := z.OpenMmapFile(name, os.O_RDONLY, 0)
	if err != nil && !errors.Is(err, z.NewFile) {
		return err
	}
	if _, err := table.OpenTable(mf, table.Options{ReadOnly: true, ChkMode: options.OnTableAndBlockRead,
		BlockSize: o.BlockSize, BloomFalsePositive: o.BloomFalsePositive, Compression: compression,
		TableSize: uint64(o.BaseTableSize)}); err != nil {
		return err // OpenTable has closed the file
	}
	// Not the table's DecrRef: at zero references it deletes the file.
	return mf.Close(-1)
}
