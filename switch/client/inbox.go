package client

import (
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/crypto"
	"github.com/dienbao/dienbao/envelope"

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
	// PossibleDuplicate: the switch delivered this telegram before without
	// seeing an acknowledgement, perhaps to another terminal of the agency.
	PossibleDuplicate bool `json:"possible_duplicate"`
	// Trace lists the switches a relayed telegram passed, the filing one
	// first and the delivering one last, each with when it took custody.
	Trace []telegram.Hop `json:"trace,omitempty"`
	// The other signed header fields, so that the signed form can be
	// checked against the header as delivered.
	Ref       string    `json:"ref,omitempty"`
	DeliverAt time.Time `json:"deliver_at,omitzero"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Sealed: it came sealed end to end and was verified and opened;
	// Signed is its signed form (tg verify checks it offline).
	Sealed bool               `json:"sealed"`
	Signed *envelope.Evidence `json:"signed,omitempty"`
}

// Header is the header the telegram was delivered with (the subject as
// opened).
func (m Message) Header() telegram.Header {
	return telegram.Header{ID: m.ID, From: m.From, To: m.To, Info: m.Info, Precedence: m.Precedence,
		Classification: m.Classification, Subject: m.Subject, FiledAt: m.FiledAt, Ref: m.Ref, DeliverAt: m.DeliverAt,
		ExpiresAt: m.ExpiresAt, Trace: m.Trace, Sealed: m.Sealed, BodyLen: int64(len(m.Body))}
}

// MessageOf builds the stored form of a delivery.
func MessageOf(d Delivery) Message {
	h := d.Header
	info := h.Info
	if info == nil {
		info = []telegram.Address{}
	}
	m := Message{ID: h.ID, From: h.From, To: h.To, Info: info, Precedence: h.Precedence,
		Classification: h.Classification, Subject: h.Subject, FiledAt: h.FiledAt, Body: d.Body,
		PossibleDuplicate: d.PossibleDuplicate, Trace: h.Trace, Ref: h.Ref, DeliverAt: h.DeliverAt, ExpiresAt: h.ExpiresAt}
	if d.Opened != nil {
		m.Sealed, m.Signed = true, &d.Opened.Evidence
	}
	return m
}

// Inbox is a terminal's durable store: a folder with one file per
// telegram (ID.tg) and one per delivery report (receipts/ID-TAG.rcpt),
// each written to a temporary name, fsynced, renamed into place and the
// folder fsynced, so a stored telegram survives a crash and a half-written
// one never appears. A telegram already stored is not stored again.
//
// With a Key, every file is sealed (XChaCha20-Poly1305, bound to its file
// name) and file names carry no agency address: a copy of the folder alone
// reveals nothing. InboxKey derives the key from the terminal's private
// key, so the identity folder (which holds that key) remains what must be
// protected.
type Inbox struct {
	Dir string
	Key []byte // 32 bytes; nil stores plain JSON
	// OldKeys are the keys of the terminal's former private keys (a
	// certificate renewed with a new key): files still sealed under one
	// are read, and Rekey seals them under Key.
	OldKeys [][]byte
}

// InboxKey derives a terminal's inbox key from its private key.
func InboxKey(f *certs.Folder) ([]byte, error) {
	return InboxKeyOf(f.Cert.PrivateKey)
}

// InboxKeyOf derives the inbox key of a private key.
func InboxKeyOf(priv any) ([]byte, error) {
	if t, ok := priv.(interface{ DeriveSecret(string) ([]byte, error) }); ok {
		// A key in a PKCS#11 token cannot be read: the token derives a
		// secret of its own (certs/token.go).
		return t.DeriveSecret("dienbao inbox v1")
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fault.E("inbox", fault.Internal, "cannot read the identity's key", err)
	}
	return hkdf.Key(sha256.New, der, nil, "dienbao inbox v1", 32)
}

// Rekey seals every file of the inbox still sealed under one of OldKeys
// under Key, one file at a time (each replaced atomically; a file of
// either key is read meanwhile). It returns how many it re-sealed.
func (in *Inbox) Rekey() (int, error) {
	n := 0
	err := filepath.WalkDir(in.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		name := []byte(filepath.Base(path))
		if _, err := crypto.OpenWithKey(in.Key, name, b); err == nil {
			return nil
		}
		for _, k := range in.OldKeys {
			if plain, err := crypto.OpenWithKey(k, name, b); err == nil {
				n++
				return renameio.WriteFile(path, crypto.SealWithKey(in.Key, name, plain), 0o600)
			}
		}
		return nil // not an inbox file, or another identity's: left alone
	})
	return n, err
}

// Store durably stores d; stored is false if it was already there. A
// sealed telegram whose signed form the inbox already holds under another
// ID is a replay: Store refuses it (*envelope.Refusal, reason signature).
func (in *Inbox) Store(d Delivery) (stored bool, err error) {
	if d.Opened != nil {
		nonce := sha256.Sum256(append(append([]byte("nonce/"), in.Key...), d.Opened.Signed.Nonce...))
		name := fmt.Sprintf("%x.seen", nonce[:16])
		var first telegram.ID
		if err := in.get(filepath.Join(in.Dir, "seen", name), &first); err == nil && first != d.Header.ID {
			return false, &envelope.Refusal{Reason: envelope.ReasonSignature,
				Detail: fmt.Sprintf("a replay: this signed telegram was delivered before as %s", first)}
		} else if err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, err
		}
		if _, err := in.put(filepath.Join(in.Dir, "seen"), name, d.Header.ID); err != nil {
			return false, err
		}
	}
	return in.put(in.Dir, d.Header.ID.String()+".tg", MessageOf(d))
}

// StoreReceipt durably stores r; stored is false if it was already there.
func (in *Inbox) StoreReceipt(r telegram.Receipt) (bool, error) {
	tag := sha256.Sum256(append(append([]byte("receipt/"), in.Key...), r.Addressee...))
	return in.put(filepath.Join(in.Dir, "receipts"), fmt.Sprintf("%s-%x.rcpt", r.ID, tag[:6]), r)
}

// Message reads the stored telegram id.
func (in *Inbox) Message(id telegram.ID) (Message, error) {
	var m Message
	err := in.get(filepath.Join(in.Dir, id.String()+".tg"), &m)
	if errors.Is(err, os.ErrNotExist) {
		return m, fault.Errorf("inbox", fault.NotExist, "telegram %s is not in this terminal's inbox (%s)", id, in.Dir)
	}
	return m, err
}

// Messages reads every stored telegram, oldest ID first.
func (in *Inbox) Messages() ([]Message, error) {
	return readAll[Message](in, filepath.Join(in.Dir, "*.tg"))
}

// Receipts reads every stored delivery report, by telegram ID.
func (in *Inbox) Receipts() ([]telegram.Receipt, error) {
	return readAll[telegram.Receipt](in, filepath.Join(in.Dir, "receipts", "*.rcpt"))
}

// readAll reads every stored file matching pattern, in name order.
func readAll[T any](in *Inbox, pattern string) ([]T, error) {
	paths, err := filepath.Glob(pattern)
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	out := make([]T, 0, len(paths))
	for _, p := range paths {
		var v T
		if err := in.get(p, &v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (in *Inbox) get(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if in.Key != nil {
		sealed := b
		if b, err = crypto.OpenWithKey(in.Key, []byte(filepath.Base(path)), sealed); err != nil {
			for _, k := range in.OldKeys {
				if b, err = crypto.OpenWithKey(k, []byte(filepath.Base(path)), sealed); err == nil {
					break
				}
			}
		}
		if err != nil {
			return fault.E("inbox", fault.Integrity, path+" fails its integrity check (altered, moved, or another identity's)")
		}
	}
	return json.Unmarshal(b, v)
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
	b = append(b, '\n')
	if in.Key != nil {
		b = crypto.SealWithKey(in.Key, []byte(name), b)
	}
	if err := renameio.WriteFile(path, b, 0o600); err != nil {
		return false, fault.E("inbox", fault.Internal, "cannot store "+path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer d.Close()
	return true, d.Sync()
}
