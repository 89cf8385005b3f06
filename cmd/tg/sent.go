package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// The sent folder: what this terminal filed (recorded by tg send in the
// inbox folder, sealed as it is), with each addressee's delivery state
// from the delivery reports this terminal received.

type sentCmd struct {
	Since   string `help:"Only telegrams filed since then (7d, 2h, a date, or RFC 3339)."`
	To      string `help:"Only telegrams to this agency."`
	Pending bool   `help:"Only telegrams some addressee has no final report for."`
	Offline bool   `help:"Do not ask the switch for new delivery reports first: show the states last received."`
}

// sentRow is one filed telegram as tg sent prints it with --json.
type sentRow struct {
	client.Sent
	Addressees []sentState `json:"addressees"`
}

// sentState is one addressee's delivery state.
type sentState struct {
	Agency  telegram.Address `json:"agency"`
	Status  string           `json:"status"` // DELIVERED, NOT_DELIVERED, MOVED, or WAITING (no report yet)
	Reason  string           `json:"reason,omitempty"`
	At      time.Time        `json:"at,omitzero"`
	MovedTo telegram.Address `json:"moved_to,omitempty"`
}

func (c *sentCmd) Run(e *env) error {
	in, err := e.inbox("")
	if err != nil {
		return err
	}
	since, err := parseWhen(c.Since)
	if err != nil {
		return err
	}
	if !c.Offline {
		// Take the delivery reports waiting at the switch first (stored, as
		// tg receipts does); unreachable, the states last received stand.
		if cl, err := e.dial(); err != nil {
			fmt.Fprintf(e.stderr, "tg: the switch is out of reach (%v): states as last received\n", err)
		} else {
			err = cl.Receive(e.ctx, client.ReceiveOptions{Receipts: true}, &receiptStore{inbox: in})
			cl.Close()
			if err != nil {
				return err
			}
		}
	}
	sent, err := in.Sent()
	if err != nil {
		return err
	}
	rs, err := in.Receipts()
	if err != nil {
		return err
	}
	reports := map[telegram.ID]map[telegram.Address]telegram.Receipt{}
	for _, r := range rs {
		if reports[r.ID] == nil {
			reports[r.ID] = map[telegram.Address]telegram.Receipt{}
		}
		reports[r.ID][r.Addressee] = r
	}
	to := telegram.Address(strings.ToUpper(c.To))
	n := 0
	for _, s := range sent {
		row := sentRow{Sent: s}
		pending, hit := false, to == ""
		addressees := append(append([]telegram.Address{}, s.To...), s.Info...)
		for i := 0; i < len(addressees); i++ {
			a := addressees[i]
			hit = hit || a == to
			st := sentState{Agency: a, Status: "WAITING"}
			if r, ok := reports[s.ID][a]; ok {
				st = sentState{Agency: a, Status: r.Status.String(), Reason: r.Reason, At: r.At, MovedTo: r.MovedTo}
				if r.MovedTo != "" {
					addressees = append(addressees, r.MovedTo) // its copy goes on there
				}
			} else {
				pending = true
			}
			row.Addressees = append(row.Addressees, st)
		}
		if !hit || (!since.IsZero() && s.FiledAt.Before(since)) || (c.Pending && !pending) {
			continue
		}
		n++
		if e.json {
			if err := e.emit(row); err != nil {
				return err
			}
			continue
		}
		if err := e.printSent(row); err != nil {
			return err
		}
	}
	if n == 0 && !e.json {
		_, err = fmt.Fprintln(e.stdout, "nothing filed from this terminal matches")
	}
	return err
}

func (e *env) printSent(r sentRow) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %s  %s  filed %s", r.ID, r.Precedence, r.Classification, e.when(r.FiledAt))
	if r.Subject != "" {
		fmt.Fprintf(&b, "  %q", r.Subject)
	}
	if r.Ref != "" {
		fmt.Fprintf(&b, "  ref %s", r.Ref)
	}
	if len(r.Attachments) > 0 {
		fmt.Fprintf(&b, "  attached: %s", strings.Join(r.Attachments, ", "))
	}
	b.WriteString("\n")
	for _, a := range r.Addressees {
		switch {
		case a.Status == "WAITING":
			fmt.Fprintf(&b, "    %-14s waiting: no delivery report yet\n", a.Agency)
		case a.MovedTo != "":
			fmt.Fprintf(&b, "    %-14s %s to %s  %s\n", a.Agency, a.Status, a.MovedTo, e.when(a.At))
		default:
			fmt.Fprintf(&b, "    %-14s %s %s  %s\n", a.Agency, a.Status, a.Reason, e.when(a.At))
		}
	}
	_, err := fmt.Fprint(e.stdout, b.String())
	return err
}

// receiptStore stores delivery reports without printing them.
type receiptStore struct{ inbox *client.Inbox }

func (r *receiptStore) Telegram(client.Delivery) error {
	return fault.E("sent", fault.Internal, "a telegram on a delivery-report stream")
}

func (r *receiptStore) Receipt(rc telegram.Receipt) error {
	_, err := r.inbox.StoreReceipt(rc)
	return err
}

// recordSent keeps a filed telegram for tg sent.
func (e *env) recordSent(s client.Sent) error {
	in, err := e.inbox("")
	if err != nil {
		return err
	}
	return in.StoreSent(s)
}
