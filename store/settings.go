package store

import (
	"errors"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/switch/telegram"
)

// Settings: switch-wide state an operator changes at run time and that
// must outlive a restart (the MINIMIZE declarations in force), sealed like
// every record. The store keeps the bytes; their meaning is the caller's.

func settingKey(name string) []byte { return metaKey("setting/" + name) }

// PutSetting stores v as setting name and appends e to the audit log, in
// one commit, taking the FLASH lane: an operator's change does not wait
// for routine work.
func (s *Store) PutSetting(name string, v []byte, e AuditEntry) error {
	return s.submit(&op{prec: telegram.Flash, apply: func(c *commitCtx) error {
		if err := c.set(settingKey(name), v); err != nil {
			return err
		}
		return c.appendAudit(e)
	}})
}

// Setting returns setting name, nil if it was never set.
func (s *Store) Setting(name string) ([]byte, error) {
	var v []byte
	err := s.view(func(txn *badger.Txn) error {
		b, err := s.get(txn, settingKey(name))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		v = b
		return err
	})
	return v, err
}
