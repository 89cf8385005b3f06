package store

import (
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

// Damaged tables. Badger checks every table's blocks when it opens the
// store, but a damaged data block can make that check dereference nil in
// one of Badger's own goroutines (a panic nobody can recover), and a table
// whose checksum fails is dropped with a log line and the store opened
// without it: its telegrams, queue entries and audit entries gone. So the
// store checks every table the manifest lists, itself, before Badger opens
// them, and refuses to open with a clear error naming the damaged table
// (restore the store from a backup). Tables the manifest does not list
// (left by a crash during a compaction) are Badger's to delete.

// verifyTables checks the tables the manifest in dir lists.
func verifyTables(dir string, o badger.Options) error {
	fp, err := os.Open(filepath.Join(dir, badger.ManifestFilename))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // a new store
	}
	if err != nil {
		return fault.E("store.open", fault.Internal, "cannot read the store's manifest", err)
	}
	m, _, err := badger.ReplayManifestFile(fp, o.ExternalMagicVersion, o)
	fp.Close()
	if err != nil {
		return fault.E("store.open", fault.Integrity, "the store's manifest is damaged; restore the store from a backup", err)
	}
	for id, tm := range m.Tables {
		name := table.NewFilename(id, dir)
		if err := verifyTable(name, tm, o); err != nil {
			return fault.E("store.open", fault.Integrity,
				fmt.Sprintf("the store's table %s is damaged (%v); the switch does not start without it: restore the store from a backup", filepath.Base(name), err))
		}
	}
	return nil
}

// verifyTable opens one table read-only and checks all its blocks,
// turning a panic in Badger's table code into an error.
func verifyTable(name string, tm badger.TableManifest, o badger.Options) (err error) {
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
		BlockSize: o.BlockSize, BloomFalsePositive: o.BloomFalsePositive, Compression: tm.Compression,
		TableSize: uint64(o.BaseTableSize)}); err != nil {
		return err // OpenTable has closed the file
	}
	// Not the table's DecrRef: at zero references it deletes the file.
	return mf.Close(-1)
}
