package store

import (
	"errors"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/store/auditlog"
)

// auditTxn gives the audit log (store/auditlog) one Badger transaction:
// values sealed and opened with the keyring, like every other record.
type auditTxn struct {
	s   *Store
	txn wtxn
}

func (c *commitCtx) audit() auditTxn { return auditTxn{c.s, c.txn} }

// Archived audit entries (archive.go) are read from their files: Get,
// Keys and Values give them as if they were stored.

func (t auditTxn) Get(key []byte) ([]byte, error) {
	if i, ok := isLeafKey(key); ok && i < t.s.ArchivedBelow() {
		return t.s.archivedLeaf(i)
	}
	v, err := t.s.get(t.txn.Txn, key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, auditlog.ErrNotFound
	}
	return v, err
}

func (t auditTxn) Set(key, value []byte) error { return t.txn.Set(key, t.s.sealValue(key, value)) }

func (t auditTxn) Keys(prefix, seek []byte, reverse bool, fn func(key []byte) (bool, error)) error {
	return t.scan(prefix, seek, reverse, func(k, _ []byte, _ error) (bool, error) { return fn(k) }, true)
}

func (t auditTxn) Values(prefix, seek []byte, reverse bool, fn func(key, value []byte, openErr error) (bool, error)) error {
	return t.scan(prefix, seek, reverse, fn, false)
}

// scan walks prefix from seek, with values unless keysOnly, archived
// leaves included.
func (t auditTxn) scan(prefix, seek []byte, reverse bool, fn func(key, value []byte, openErr error) (bool, error), keysOnly bool) error {
	below := t.s.ArchivedBelow()
	from, leaves := isLeafKey(seek)
	leaves = leaves && len(prefix) == 1 && below > 0
	archived := func(i uint64) (bool, error) {
		var v []byte
		var err error
		if !keysOnly {
			v, err = t.s.archivedLeaf(i)
		}
		return fn(auditlog.LeafKey(i), v, err)
	}
	if leaves && !reverse && from < below {
		for i := from; i < below; i++ {
			if more, err := archived(i); err != nil || !more {
				return err
			}
		}
		seek = auditlog.LeafKey(below)
	}
	stopped := false
	err := t.iterate(prefix, seek, reverse, func(k, v []byte, openErr error) (bool, error) {
		more, err := fn(k, v, openErr)
		stopped = !more
		return more, err
	}, keysOnly)
	if err != nil || stopped || !leaves || !reverse {
		return err
	}
	for i := min(from, below-1) + 1; i > 0; i-- {
		if more, err := archived(i - 1); err != nil || !more {
			return err
		}
	}
	return nil
}

func (t auditTxn) keys(prefix, seek []byte, reverse bool, fn func(key []byte) (bool, error)) error {
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: reverse})
	defer it.Close()
	for it.Seek(seek); it.Valid(); it.Next() {
		if more, err := fn(it.Item().Key()); err != nil || !more {
			return err
		}
	}
	return nil
}

func (t auditTxn) iterate(prefix, seek []byte, reverse bool, fn func(key, value []byte, openErr error) (bool, error), keysOnly bool) error {
	if keysOnly {
		return t.keys(prefix, seek, reverse, func(k []byte) (bool, error) { return fn(k, nil, nil) })
	}
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: reverse, PrefetchValues: !reverse, PrefetchSize: 64})
	defer it.Close()
	for it.Seek(seek); it.Valid(); it.Next() {
		var v []byte
		var err error
		if it.Item().ValueSize() > 0 { // an empty value is an index entry of the form written before
			v, err = t.s.value(it.Item())
		}
		if more, err := fn(it.Item().Key(), v, err); err != nil || !more {
			return err
		}
	}
	return nil
}

// viewAudit runs fn on a read snapshot for the audit log.
func (s *Store) viewAudit(fn func(auditlog.Txn) error) error {
	return s.view(func(txn *badger.Txn) error { return fn(auditTxn{s, wtxn{Txn: txn}}) })
}
