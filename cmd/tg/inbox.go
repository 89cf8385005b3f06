package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dienbao/dienbao/envelope"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/google/renameio/v2"
)

type inboxCmd struct {
	Follow bool   `help:"Keep waiting for telegrams instead of exiting when nothing is left."`
	Out    string `type:"path" help:"Folder to store telegrams in, sealed (default: inbox/ inside the identity folder)."`
	Stored bool   `help:"Print the telegrams already stored in the inbox folder instead of receiving."`
	// Searching what is stored.
	From   string `help:"With --stored: only telegrams from this agency."`
	Prec   string `help:"With --stored: only this precedence."`
	Since  string `help:"With --stored: only telegrams filed since then (7d, 2h, or RFC 3339)."`
	Search string `help:"With --stored: only telegrams whose subject or body contains this text (any case, with or without diacritics)."`
}

// matches says whether a stored telegram passes the search.
func (c *inboxCmd) matches(m client.Message, prec telegram.Precedence, since time.Time) bool {
	switch {
	case c.From != "" && string(m.From) != strings.ToUpper(c.From):
		return false
	case prec != 0 && m.Precedence != prec:
		return false
	case !since.IsZero() && m.FiledAt.Before(since):
		return false
	case c.Search != "" && !strings.Contains(telegram.Fold(m.Subject+"\n"+string(m.Body)), telegram.Fold(c.Search)):
		return false
	}
	return true
}

func (c *inboxCmd) Run(e *env) error {
	in, err := e.inbox(c.Out)
	if err != nil {
		return err
	}
	h := &printer{e: e, inbox: in}
	searching := c.From != "" || c.Prec != "" || c.Since != "" || c.Search != ""
	if searching && !c.Stored {
		return fault.E("inbox", fault.Invalid, "--from, --prec, --since and --search search what is stored: add --stored")
	}
	if c.Stored {
		var prec telegram.Precedence
		if c.Prec != "" {
			if prec, err = telegram.ParsePrecedence(c.Prec); err != nil {
				return err
			}
		}
		since, err := parseWhen(c.Since)
		if err != nil {
			return err
		}
		msgs, err := in.Messages()
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if !c.matches(m, prec, since) {
				continue
			}
			if err := h.print(m); err != nil {
				return err
			}
		}
		return nil
	}
	cl, err := e.dial()
	if err != nil {
		return err
	}
	cl.OnReject = func(hd telegram.Header, r *envelope.Refusal) {
		e.mu.Lock()
		defer e.mu.Unlock()
		fmt.Fprintf(e.stderr, "tg: REFUSED telegram %s from %s: %s: %s; not stored, the sender is told NOT_DELIVERED (%s)\n",
			hd.ID, hd.From, r.Reason, e.line(r.Detail), r.Reason)
	}
	return cl.Receive(e.ctx, client.ReceiveOptions{Inbox: true, Follow: c.Follow}, h)
}

type receiptsCmd struct {
	Follow bool `help:"Keep waiting for delivery reports instead of exiting when nothing is left."`
	Stored bool `help:"Print the delivery reports already stored (inbox/receipts/) instead of receiving: every report this terminal received, by telegram."`
}

func (c *receiptsCmd) Run(e *env) error {
	in, err := e.inbox("")
	if err != nil {
		return err
	}
	if c.Stored {
		rs, err := in.Receipts()
		if err != nil {
			return err
		}
		for _, r := range rs {
			if err := e.printReceipt(r); err != nil {
				return err
			}
		}
		return nil
	}
	cl, err := e.dial()
	if err != nil {
		return err
	}
	h := &printer{e: e, inbox: in}
	return cl.Receive(e.ctx, client.ReceiveOptions{Receipts: true, Follow: c.Follow}, h)
}

// printer stores each delivery durably, then prints it. What was stored
// before (a possible duplicate) is acknowledged but not printed again.
type printer struct {
	e     *env
	inbox *client.Inbox
}

func (p *printer) Telegram(d client.Delivery) error {
	stored, err := p.inbox.Store(d)
	if err != nil || !stored {
		return err
	}
	return p.print(client.MessageOf(d))
}

// print shows one telegram: the recipient's own inbox view, the one place
// a body and subject are printed. Its attachments are saved (saveAttachments)
// and listed after its text.
func (p *printer) print(m client.Message) error {
	text, atts, err := client.SplitBody(m.Body)
	if err != nil {
		return err
	}
	saved, err := p.e.saveAttachments(m.ID, atts)
	if err != nil {
		return err
	}
	if p.e.json {
		// The body as text too, when it is text: a script reads it
		// without decoding base64.
		t := ""
		if utf8.Valid(text) {
			t = string(text)
		}
		list := make([]savedAttachment, len(atts))
		for i, a := range atts {
			list[i] = savedAttachment{a, saved[i]}
		}
		return p.e.emit(struct {
			client.Message
			Text        string            `json:"text"`
			Attachments []savedAttachment `json:"attachments"`
		}{m, t, list})
	}
	mark := ""
	if m.PossibleDuplicate {
		mark = "POSSIBLE DUPLICATE"
	}
	m.Body = text
	return p.e.showTelegram(m, mark, attachedLines(p.e, atts, saved))
}

// savedAttachment is an attachment as tg inbox --json prints it.
type savedAttachment struct {
	client.Received
	Saved string `json:"saved"` // the file it was saved to
}

// saveAttachments writes a telegram's attachments into
// attachments/ID/ in the identity folder (mode 0600, the folder 0700),
// once: a file already there is kept. It returns the paths.
func (e *env) saveAttachments(id telegram.ID, atts []client.Received) ([]string, error) {
	if len(atts) == 0 {
		return nil, nil
	}
	dir := filepath.Join(e.id, "attachments", id.String())
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fault.E("inbox", fault.Internal, "cannot create "+dir, err)
	}
	out := make([]string, len(atts))
	for i, a := range atts {
		out[i] = filepath.Join(dir, a.Name)
		if _, err := os.Stat(out[i]); err == nil {
			continue
		}
		if err := renameio.WriteFile(out[i], a.Data, 0o600); err != nil {
			return nil, fault.E("inbox", fault.Internal, "cannot save attachment "+a.Name, err)
		}
	}
	return out, nil
}

// attachedLines lists attachments under a telegram's text, with where
// each was saved (saved nil: a copy, whose attachments are not saved).
func attachedLines(e *env, atts []client.Received, saved []string) string {
	var b strings.Builder
	for i, a := range atts {
		if saved == nil {
			fmt.Fprintf(&b, "Attached: %s (not saved: tg inbox saves what is delivered)\n", e.line(a.String()))
			continue
		}
		fmt.Fprintf(&b, "Attached: %s\n          saved to %s\n", e.line(a.String()), saved[i])
	}
	return b.String()
}

// showTelegram prints a telegram for its reader (from the inbox, or a
// copy from the journal), mark after its heading, text from others made
// safe unless --raw, and after the text what extra says.
func (e *env) showTelegram(m client.Message, mark, extra string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	info := "-"
	if len(m.Info) > 0 {
		info = join(m.Info)
	}
	if mark != "" {
		mark = "  " + mark
	}
	via := ""
	if len(m.Trace) > 0 {
		hops := make([]string, len(m.Trace))
		for i, h := range m.Trace {
			hops[i] = e.line(h.Switch)
		}
		via = "Via:     " + strings.Join(hops, " > ") + "\n"
	}
	signed := "Signed:  no: filed unsealed, the switch could read it\n"
	if m.Sealed {
		signed = "Signed:  sealed end to end; signature by " + string(m.From) + " verified (tg verify checks it again offline)\n"
	}
	if _, err := fmt.Fprint(e.stdout, banner(m.Precedence, m.Classification, e.isTerminal())); err != nil {
		return err
	}
	_, err := fmt.Fprintf(e.stdout, "=== %s  %s  %s%s\nFrom:    %s\nTo:      %s\nInfo:    %s\nFiled:   %s\n%s%sSubject: %s\n\n%s\n%s\n",
		m.ID, m.Precedence, m.Classification, mark, m.From, join(m.To), info, e.when(m.FiledAt), via, signed, e.line(m.Subject), e.text(string(m.Body)), extra)
	return err
}

// banner is what a FLASH, a SECRET or a TOP SECRET telegram is shown
// under, so that a clerk cannot miss it: a line of its own, and on a
// terminal a bell.
func banner(p telegram.Precedence, c telegram.Classification, tty bool) string {
	var parts []string
	if p == telegram.Flash {
		parts = append(parts, "HỎA TỐC · FLASH")
	}
	switch c {
	case telegram.TopSecret:
		parts = append(parts, "TUYỆT MẬT · TOP SECRET")
	case telegram.Secret:
		parts = append(parts, "TỐI MẬT · SECRET")
	}
	if len(parts) == 0 {
		return ""
	}
	b := "!!!!!!!!  " + strings.Join(parts, "  ·  ") + "  !!!!!!!!\n"
	if tty {
		b = "\a" + b
	}
	return b
}

func (p *printer) Receipt(r telegram.Receipt) error {
	stored, err := p.inbox.StoreReceipt(r)
	if err != nil || !stored {
		return err
	}
	return p.e.printReceipt(r)
}

// printReceipt prints one delivery report: a line, or JSON.
func (e *env) printReceipt(r telegram.Receipt) error {
	if e.json {
		return e.emit(r)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	reason := r.Reason
	if r.Status == telegram.Moved {
		reason = "to " + string(r.MovedTo) // that agency's own report follows
	}
	_, err := fmt.Fprintf(e.stdout, "%s  %-14s %-13s %s %s\n", r.ID, r.Addressee, r.Status, e.when(r.At), e.line(reason))
	return err
}

func join(list []telegram.Address) string { return telegram.Join(list, ", ") }
