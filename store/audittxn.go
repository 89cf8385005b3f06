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
	txn *badger.Txn
}

func (c *commitCtx) audit() auditTxn { return auditTxn{c.s, c.txn} }

func (t auditTxn) Get(key []byte) ([]byte, error) {
	v, err := t.s.get(t.txn, key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, auditlog.ErrNotFound
	}
	return v, err
}

func (t auditTxn) Set(key, value []byte) error { return t.txn.Set(key, t.s.sealValue(key, value)) }

func (t auditTxn) Keys(prefix, seek []byte, reverse bool, fn func(key []byte) (bool, error)) error {
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: reverse})
	defer it.Close()
	for it.Seek(seek); it.Valid(); it.Next() {
		if more, err := fn(it.Item().Key()); err != nil || !more {
			return err
		}
	}
	return nil
}

func (t auditTxn) Values(prefix, seek []byte, reverse bool, fn func(key, value []byte, openErr error) (bool, error)) error {
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
	return s.view(func(txn *badger.Txn) error { return fn(auditTxn{s, txn}) })
}
