package client

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/google/renameio/v2"
)

// Message is a received telegram as stored on disk and printed by tg
// inbox --json. Field names are stable.
type Message struct {
	ID             telegram.ID             `json:"id"`
	From           telegram.Address        `json:"from"`
	To             []telegram.Address      `json:"to"`
	Info           []telegram.Address      `json:"info"`
	Precedence     telegram.Precedence     `json:"precedence"`
	Classification telegram.Classification `json:"classification"`
	Subject        string                  `json:"subject"`
	FiledAt        time.Time               `json:"filed_at"`
	Body           []byte                  `json:"body"`
}

// MessageOf builds the stored form of a delivery.
func MessageOf(d Delivery) Message {
	h := d.Header
	info := h.Info
	if info == nil {
		info = []telegram.Address{}
	}
	return Message{ID: h.ID, From: h.From, To: h.To, Info: info, Precedence: h.Precedence,
		Classification: h.Classification, Subject: h.Subject, FiledAt: h.FiledAt, Body: d.Body}
}

// Inbox is a folder holding one JSON file per telegram (ID.json) and one
// per delivery report (receipts/ID.ADDRESSEE.json). Each file is written
// to a temporary name, fsynced, renamed into place and the folder fsynced,
// so a stored telegram survives a crash and a half-written one never
// appears. A telegram already stored is not stored again.
type Inbox struct {
	Dir string
}

// Store durably stores d; stored is false if it was already there.
func (in *Inbox) Store(d Delivery) (stored bool, err error) {
	return in.put(in.Dir, d.Header.ID.String()+".json", MessageOf(d))
}

// StoreReceipt durably stores r; stored is false if it was already there.
func (in *Inbox) StoreReceipt(r telegram.Receipt) (bool, error) {
	return in.put(filepath.Join(in.Dir, "receipts"), r.ID.String()+"."+string(r.Addressee)+".json", r)
}

func (in *Inbox) put(dir, name string, v any) (bool, error) {
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fault.E("inbox", fault.Internal, "cannot create "+dir, err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return false, err
	}
	if err := renameio.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return false, fault.E("inbox", fault.Internal, "cannot store "+path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer d.Close()
	return true, d.Sync()
}
