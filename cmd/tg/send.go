package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/filing"
	"github.com/dienbao/dienbao/switch/telegram"
)

type sendCmd struct {
	To        []string `required:"" sep:"," help:"Action addressees (agency addresses, comma-separated or repeated)."`
	Info      []string `sep:"," help:"Info addressees."`
	Prec      string   `default:"ROUTINE" help:"Precedence: FLASH|IMMEDIATE|PRIORITY|ROUTINE or HOATOC|THUONGKHAN|KHAN|THUONG."`
	Class     string   `default:"UNCLASSIFIED" help:"Classification: UNCLASSIFIED|CONFIDENTIAL|SECRET|TOP SECRET or KHONGMAT|MAT|TOIMAT|TUYETMAT."`
	Subject   string   `help:"Subject line (seen only by addressees)."`
	Ref       string   `help:"Your own reference: filing again with it returns the same ID and files nothing new."`
	Expire    string   `help:"Latest delivery time: a duration from now (90m, 2h) or an RFC 3339 time. Addressees that do not have it by then never get it."`
	DeliverAt string   `name:"deliver-at" help:"Deferred delivery (hẹn giờ): the switch takes custody now and queues the telegram at this time: a duration from now (90m), a local time today or a local date and time (14:30, 2026-12-01 08:00), or an RFC 3339 time."`
	File      string   `type:"path" help:"Read the body (the text) from this file."`
	Attach    []string `type:"existingfile" placeholder:"PATH" help:"Attach this file beside the text (repeatable): its name, media type, size and SHA-256 go with it, sealed with the body; the body's size limit covers text and files together. tg inbox saves attachments under attachments/ID/ in the identity folder."`
	Plain     bool     `help:"File it unsealed, though this identity holds its agency's keys (below SECRET, where the site allows it)."`
	Text      []string `arg:"" optional:"" help:"The body; without it and without --file, standard input."`
}

// sendResult is what send prints with --json.
type sendResult struct {
	ID        telegram.ID `json:"id"`
	Duplicate bool        `json:"duplicate"`
	Minimize  uint64      `json:"deferred_by_minimize,omitempty"` // accepted, deferred until that MINIMIZE is lifted
	Sealed    bool        `json:"sealed"`                         // sealed and signed end to end
}

func (c *sendCmd) Run(e *env) error {
	const op = "send"
	prec, err := telegram.ParsePrecedence(c.Prec)
	if err != nil {
		return err
	}
	class, err := telegram.ParseClassification(c.Class)
	if err != nil {
		return err
	}
	to, err := addresses(c.To)
	if err != nil {
		return err
	}
	info, err := addresses(c.Info)
	if err != nil {
		return err
	}
	now := time.Now()
	expires, err := parseExpire(c.Expire, now)
	if err != nil {
		return err
	}
	deliverAt, err := parseDeliverAt(c.DeliverAt, now)
	if err != nil {
		return err
	}
	var body []byte
	switch {
	case c.File != "" && len(c.Text) > 0:
		return fault.E(op, fault.Invalid, "give the body as text or --file, not both")
	case c.File != "":
		if body, err = os.ReadFile(c.File); err != nil {
			return fault.E(op, fault.Invalid, "cannot read the body file", err)
		}
	case len(c.Text) == 1 && isFile(c.Text[0]):
		// tg send --to X report.txt would file the words "report.txt".
		return fault.Errorf(op, fault.Invalid, "%q is a file: to send its content, give --file %s; to send these words, quote them with other text or pipe them on standard input", c.Text[0], c.Text[0])
	case len(c.Text) > 0:
		body = []byte(strings.Join(c.Text, " "))
	default:
		if e.stdinTerminal() {
			fmt.Fprintln(e.stderr, "Type the text of the telegram; end with Ctrl-D on a line of its own (Ctrl-C to give up):")
		}
		if body, err = io.ReadAll(e.stdin); err != nil {
			return fault.E(op, fault.Invalid, "cannot read the body from standard input", err)
		}
	}
	if len(body) == 0 {
		return fault.E(op, fault.Invalid, "the body is empty: a telegram must have text")
	}
	if body, err = withAttachments(body, c.Attach); err != nil {
		return err
	}
	cl, err := e.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	res, err := cl.Send(e.ctx, client.Telegram{To: to, Info: info, Precedence: prec, Classification: class,
		Subject: c.Subject, Ref: c.Ref, Body: body, ExpiresAt: expires, DeliverAt: deliverAt, Plain: c.Plain})
	if err != nil {
		return err
	}
	if err := e.recordSent(client.Sent{ID: res.ID, FiledAt: time.Now(), To: to, Info: info, Precedence: prec, Classification: class,
		Subject: c.Subject, Ref: c.Ref, Bytes: len(body), Attachments: attachmentNames(c.Attach), Sealed: res.Sealed}); err != nil {
		fmt.Fprintf(e.stderr, "tg: filed %s, but it could not be recorded for tg sent: %v\n", res.ID, err)
	}
	if e.json {
		return e.emit(sendResult{ID: res.ID, Duplicate: res.Duplicate, Minimize: res.Minimize, Sealed: res.Sealed})
	}
	if res.Duplicate {
		fmt.Fprintf(e.stderr, "tg: reference %q was already filed; nothing new was filed\n", c.Ref)
	}
	if !res.Sealed {
		fmt.Fprintln(e.stderr, "tg: filed UNSEALED: the switch can read it (this identity holds no agency keys, --plain, or an addressee has no published key)")
	}
	if res.Minimize != 0 {
		fmt.Fprintf(e.stderr, "tg: accepted, and deferred under MINIMIZE %d: delivered once it is lifted or ends (tg minimize shows it)\n", res.Minimize)
	}
	_, err = fmt.Fprintln(e.stdout, res.ID)
	return err
}

func addresses(list []string) ([]telegram.Address, error) {
	out := make([]telegram.Address, 0, len(list))
	for _, s := range list {
		if strings.TrimSpace(s) == "" {
			continue
		}
		a, err := telegram.ParseAddress(s)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// parseExpire reads --expire: a positive duration from now, or an
// absolute RFC 3339 time.
func parseExpire(s string, now time.Time) (time.Time, error) {
	t, ok, err := parseAhead("--expire", s, now)
	if err != nil || ok || s == "" {
		return t, err
	}
	return time.Time{}, fault.Errorf("send", fault.Invalid, "--expire %q: give a duration (90m, 2h) or an RFC 3339 time (2026-12-01T08:00:00+07:00)", s)
}

// parseDeliverAt reads --deliver-at: a positive duration from now, a local
// time today (15:04) or a local date and time (2006-01-02 15:04), or an
// RFC 3339 time. Whether the time is acceptable (not past, before the
// latest delivery time) is the switch's to say, on its own clock.
func parseDeliverAt(s string, now time.Time) (time.Time, error) {
	t, ok, err := parseAhead("--deliver-at", s, now)
	if err != nil || ok || s == "" {
		return t, err
	}
	if t, err := time.ParseInLocation("2006-01-02 15:04", s, now.Location()); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("15:04", s, now.Location()); err == nil {
		y, m, d := now.Date()
		return time.Date(y, m, d, t.Hour(), t.Minute(), 0, 0, now.Location()), nil
	}
	return time.Time{}, fault.Errorf("send", fault.Invalid,
		"--deliver-at %q: give a duration (90m), a local time (14:30), a local date and time (2026-12-01 08:00) or an RFC 3339 time", s)
}

// parseAhead reads the forms --expire and --deliver-at share: nothing, a
// positive duration from now, an RFC 3339 time. ok says s was one of them.
func parseAhead(flag, s string, now time.Time) (t time.Time, ok bool, err error) {
	if s == "" {
		return time.Time{}, true, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, true, fault.Errorf("send", fault.Invalid, "%s %s: the duration must be positive", flag, s)
		}
		return now.Add(d), true, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, true, nil
	}
	return time.Time{}, false, nil
}

// isFile says whether name is an existing regular file.
func isFile(name string) bool {
	st, err := os.Stat(name)
	return err == nil && st.Mode().IsRegular()
}

// withAttachments is the body of text and the files at paths (the text
// alone without any).
func withAttachments(text []byte, paths []string) ([]byte, error) {
	if len(paths) == 0 {
		return text, nil
	}
	atts := make([]client.Attachment, len(paths))
	for i, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fault.E("send", fault.Invalid, "cannot read the attachment "+p, err)
		}
		atts[i] = client.Attachment{Name: filepath.Base(p), Data: data}
	}
	if n := client.AttachmentsSize(text, atts); n > filing.DefaultLimits.MaxBody {
		return nil, fault.Errorf("send", fault.TooLarge, "the text and attachments come to %d bytes, over the %d a telegram may carry", n, filing.DefaultLimits.MaxBody)
	}
	return client.ComposeBody(text, atts)
}

func attachmentNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = client.SafeName(filepath.Base(p))
	}
	return out
}
