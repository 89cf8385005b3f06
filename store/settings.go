package store

import (
	"errors"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// Settings: switch-wide state an operator changes at run time and that
// must outlive a restart (the MINIMIZE declarations in force), encoded
// with the store's record codec (record.go: the disk format is not the
// protocol's) and sealed like every record. Their meaning is the
// caller's.

func settingKey(name string) []byte { return metaKey("setting/" + name) }

// PutSetting stores v as setting name and appends e to the audit log, in
// one commit, taking the FLASH lane: an operator's change does not wait
// for routine work. An entry without an event is not appended (state the
// switch keeps for itself, such as the checkpoints a witness cosigned).
func (s *Store) PutSetting(name string, v any, e AuditEntry) error {
	b, err := encodeRecord(v)
	if err != nil {
		return fault.E("store.setting", fault.Internal, "encode setting "+name, err)
	}
	return s.submit(&op{prec: telegram.Flash, apply: func(c *commitCtx) error {
		if err := c.set(settingKey(name), b); err != nil {
			return err
		}
		if e.Event == "" {
			return nil
		}
		return c.appendAudit(e)
	}})
}

// Setting decodes setting name into v and reports whether it was ever
// set (v is left as it is if not).
func (s *Store) Setting(name string, v any) (found bool, err error) {
	err = s.view(func(txn *badger.Txn) error {
		b, err := s.get(txn, settingKey(name))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		found = true
		if err := decodeRecord(b, v); err != nil {
			return fault.E("store.setting", fault.Integrity, "setting "+name+" is unreadable", err)
		}
		return nil
	})
	return found, err
}
