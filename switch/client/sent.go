package client

import (
	"path/filepath"
	"time"

	"github.com/dienbao/dienbao/switch/telegram"
)

// Sent is the terminal's own record of a telegram it filed (tg sent),
// kept in the inbox folder (sent/ID.sent), sealed as the inbox is, once
// the switch accepted it.
type Sent struct {
	ID             telegram.ID             `json:"id"`
	FiledAt        time.Time               `json:"filed_at"` // by this terminal's clock, when the switch accepted it
	To             []telegram.Address      `json:"to"`
	Info           []telegram.Address      `json:"info"`
	Precedence     telegram.Precedence     `json:"precedence"`
	Classification telegram.Classification `json:"classification"`
	Subject        string                  `json:"subject"`
	Ref            string                  `json:"ref,omitempty"`
	Bytes          int                     `json:"bytes"`
	Attachments    []string                `json:"attachments"` // file names
	Sealed         bool                    `json:"sealed"`
}

// StoreSent durably records a telegram this terminal filed; a record
// already there (a duplicate filing) is kept.
func (in *Inbox) StoreSent(s Sent) error {
	_, err := in.put(filepath.Join(in.Dir, "sent"), s.ID.String()+".sent", s)
	return err
}

// Sent reads every record of a telegram this terminal filed, oldest first.
func (in *Inbox) Sent() ([]Sent, error) {
	return readAll[Sent](in, filepath.Join(in.Dir, "sent", "*.sent"))
}
