package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

type auditCmd struct {
	Query      auditQueryCmd      `cmd:"" help:"List audit entries (auditors: all; terminals: their agency's; operators: without telegram metadata)."`
	Verify     auditVerifyCmd     `cmd:"" help:"Recompute the Merkle tree over the whole log and check it against every signed checkpoint (auditor)."`
	Proof      auditProofCmd      `cmd:"" help:"Get the proof bundle of a telegram's audit entries, checkable offline by anyone."`
	CheckProof auditCheckProofCmd `cmd:"" name:"check-proof" help:"Check a proof bundle offline, without contacting the switch."`
	Trace      auditTraceCmd      `cmd:"" help:"Follow a telegram across a network of switches: each switch's entries and proof bundle, checked against its signed checkpoint."`
	Export     auditExportCmd     `cmd:"" help:"Stream the log as JSON Lines {index, leaf} for archiving (auditor)."`
	Archive    auditArchiveCmd    `cmd:"" help:"Move old entries out of the switch's store into its sealed archive files now (auditor)."`
	Checkpoint auditCheckpointCmd `cmd:"" help:"Print the latest signed checkpoint (C2SP tlog-checkpoint, signed note)."`
}

type auditQueryCmd struct {
	ID     string  `name:"telegram" aliases:"tid" help:"Only entries of this telegram (ID)."`
	Agency string  `help:"Only entries naming this agency as sender or addressee."`
	Event  string  `help:"Only this event (filed, refused, queued, deferred, attempt, delivered, expired, parked, cancelled, overdue, report_queued, report_delivered, operator, security, integrity, key_rotation, storage, clock, retrieved, resent, purged, switch_start, switch_stop)."`
	Prec   string  `help:"Only this precedence."`
	Class  string  `help:"Only this classification."`
	Since  string  `help:"Only entries at or after this time (RFC 3339, or a duration ago such as 2h)."`
	Until  string  `help:"Only entries at or before this time (RFC 3339, or a duration ago)."`
	Oldest bool    `help:"Oldest first (default: newest first)."`
	Limit  int     `default:"50" help:"Entries per page."`
	After  *uint64 `help:"Page: only entries with a larger index."`
	Before *uint64 `help:"Page: only entries with a smaller index."`
	All    bool    `help:"Follow the pages to the end instead of printing one page."`
	CSV    bool    `name:"csv" help:"Print CSV with a header row."`
}

func (c *auditQueryCmd) request() (wire.AuditQuery, error) {
	q := wire.AuditQuery{Agency: telegram.Address(c.Agency), Event: c.Event, Newest: !c.Oldest, Limit: c.Limit}
	var err error
	if c.ID != "" {
		if q.ID, err = telegram.ParseID(c.ID); err != nil {
			return q, err
		}
	}
	if c.Event != "" && !audit.ValidEvent(c.Event) {
		return q, fault.Errorf("audit", fault.Invalid, "unknown event %q; one of %s", c.Event, strings.Join(audit.Events, ", "))
	}
	if c.Prec != "" {
		if err := q.Precedence.UnmarshalText([]byte(c.Prec)); err != nil {
			return q, err
		}
	}
	if c.Class != "" {
		if err := q.Classification.UnmarshalText([]byte(c.Class)); err != nil {
			return q, err
		}
	}
	if q.Since, err = parseWhen(c.Since); err != nil {
		return q, err
	}
	if q.Until, err = parseWhen(c.Until); err != nil {
		return q, err
	}
	if c.After != nil {
		q.From = *c.After + 1
	}
	if c.Before != nil {
		if *c.Before == 0 {
			return q, fault.E("audit", fault.Invalid, "--before 0 selects nothing")
		}
		q.To = *c.Before
	}
	return q, nil
}

// parseWhen reads an RFC 3339 time or a duration before now.
func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	if n, err := strconv.Atoi(strings.TrimSuffix(s, "d")); err == nil && strings.HasSuffix(s, "d") && n >= 0 {
		return time.Now().AddDate(0, 0, -n), nil // 7d: seven days ago
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return t, fault.Errorf("audit", fault.Invalid, "time %q: use RFC 3339 (2026-11-27T08:00:00+07:00) or a duration such as 2h or 7d", s)
	}
	return t, nil
}

var auditColumns = []string{"index", "at", "event", "actor", "id", "from", "to", "precedence", "classification", "reason"}

func auditRow(en audit.Entry) []string {
	row := []string{strconv.FormatUint(en.Index, 10), en.At.Format(time.RFC3339Nano), en.Event, en.Actor, "",
		string(en.From), string(en.To), "", "", en.Reason}
	if !en.ID.IsZero() {
		row[4] = en.ID.String()
	}
	if en.Precedence != 0 {
		row[7] = en.Precedence.String()
	}
	if en.Classification != 0 {
		row[8] = en.Classification.String()
	}
	return row
}

func (c *auditQueryCmd) Run(e *env) error {
	q, err := c.request()
	if err != nil {
		return err
	}
	cl, err := e.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	var tw *tabwriter.Writer
	var cw *csv.Writer
	switch {
	case e.json:
	case c.CSV:
		cw = csv.NewWriter(e.stdout)
		cw.Write(auditColumns)
	default:
		tw = tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, strings.ToUpper(strings.Join(auditColumns, "\t")))
	}
	printed := 0
	for {
		page, err := cl.AuditQuery(e.ctx, q)
		if err != nil {
			return err
		}
		for _, en := range page.Entries {
			switch {
			case e.json:
				if err := e.emit(en); err != nil {
					return err
				}
			case cw != nil:
				cw.Write(auditRow(en))
			default:
				row := auditRow(en)
				for i := range row {
					row[i] = e.line(row[i])
				}
				row[1] = en.At.Local().Format("2006-01-02 15:04:05.000")
				fmt.Fprintln(tw, strings.Join(row, "\t"))
			}
		}
		printed += len(page.Entries)
		n := len(page.Entries)
		if !page.More || n == 0 && page.Resume == 0 {
			break
		}
		var last uint64
		switch {
		case page.Resume != 0 && q.Newest: // stopped at its scan budget
			q.To, last = page.Resume, page.Resume
		case page.Resume != 0:
			q.From, last = page.Resume, page.Resume-1
		case q.Newest:
			last = page.Entries[n-1].Index
			q.To = last
		default:
			last = page.Entries[n-1].Index
			q.From = last + 1
		}
		if !c.All && printed >= c.Limit {
			if tw != nil {
				tw.Flush()
			}
			if q.Newest {
				fmt.Fprintf(e.stderr, "more: --before %d\n", last)
			} else {
				fmt.Fprintf(e.stderr, "more: --after %d\n", last)
			}
			break
		}
		if !c.All {
			q.Limit = c.Limit - printed
		}
		if q.Newest && last == 0 {
			break
		}
	}
	if tw != nil {
		return tw.Flush()
	}
	if cw != nil {
		cw.Flush()
		return cw.Error()
	}
	return nil
}

type auditExportCmd struct {
	From uint64 `help:"First index to export."`
}

func (c *auditExportCmd) Run(e *env) error {
	cl, err := e.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	return cl.AuditLeaves(e.ctx, c.From, func(l wire.AuditLeaf) error {
		return e.emit(exportLine{Index: l.Index, Leaf: l.Leaf})
	}, nil)
}

// exportLine is one line of tg audit export.
type exportLine struct {
	Index uint64 `json:"index"`
	Leaf  []byte `json:"leaf"` // base64 of the exact leaf bytes
}

type auditCheckpointCmd struct {
	Since string `help:"A checkpoint saved earlier (file, or - for standard input): prove the log has only grown since."`
	Key   string `help:"The switch's published verifier key (default: the key the switch presents)."`
	witnessPolicy
}

// witnessPolicy is a verifier's demand on cosignatures: at least N of
// these witness keys.
type witnessPolicy struct {
	Witness   []string `placeholder:"VKEY" help:"A witness's verifier key (a peer switch's, from its own tg audit checkpoint); repeatable. With --witnesses: require cosignatures."`
	Witnesses int      `placeholder:"N" help:"Require cosignatures from at least N of the --witness keys (default: all of them, when --witness is given)."`
}

// required is how many cosignatures the policy asks for (0: none).
func (p witnessPolicy) required() int {
	if p.Witnesses > 0 {
		return p.Witnesses
	}
	return len(p.Witness)
}

func (c *auditCheckpointCmd) Run(e *env) error {
	cl, err := e.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	note, vkey, err := cl.AuditCheckpoint(e.ctx)
	if err != nil {
		return err
	}
	if c.Key != "" && c.Key != vkey {
		return fault.E("audit", fault.Integrity, "the switch presents a different verifier key than --key")
	}
	cp, err := audit.OpenCheckpoint(note, vkey)
	if err != nil {
		return fault.E("audit", fault.Integrity, "the switch's checkpoint does not verify: "+err.Error())
	}
	out := map[string]any{"checkpoint": string(note), "verifier_key": vkey, "origin": cp.Origin,
		"size": cp.Size, "root": cp.Hash}
	msg := ""
	cosigned, witnessKey, err := cl.AuditCosignatures(e.ctx)
	if err != nil {
		return err
	}
	if witnessKey != "" {
		out["witness_key"] = witnessKey
		msg += fmt.Sprintf("this switch witnesses its peers' logs with key %s\n", witnessKey)
	}
	if len(cosigned) > 0 {
		out["cosigned"] = cosigned
		for _, cs := range cosigned {
			msg += fmt.Sprintf("cosigned by witness %s (key %s) at size %d\n", cs.Witness, cs.Key, cs.Size)
		}
	}
	if n := c.required(); n > 0 {
		ok := 0
		for _, cs := range cosigned {
			if _, err := audit.Witnessed(cs.Note, vkey, c.Witness, 1); err == nil {
				ok++
			}
		}
		if ok < n {
			return fault.Errorf("audit", fault.Integrity, "%d of the --witness keys cosigned a checkpoint of this log, fewer than the %d required", ok, n)
		}
		msg += fmt.Sprintf("witness policy met: %d of the given witness keys cosigned\n", ok)
	}
	if c.Since != "" {
		old, err := c.consistent(e, cl, vkey, cp)
		if err != nil {
			return err
		}
		out["consistent_with_size"] = old.Size
		if old.Size == cp.Size {
			msg += fmt.Sprintf("the same log as the earlier checkpoint of size %d: nothing appended since\n", old.Size)
		} else {
			msg += fmt.Sprintf("consistent with the earlier checkpoint of size %d: the log has only grown\n", old.Size)
		}
	}
	if e.json {
		return e.emit(out)
	}
	_, err = fmt.Fprint(e.stdout, string(note)+msg)
	return err
}

// consistent proves that the checkpoint in c.Since is a prefix of cp.
func (c *auditCheckpointCmd) consistent(e *env, cl *client.Client, vkey string, cp audit.Checkpoint) (audit.Checkpoint, error) {
	data, err := e.readFile(c.Since)
	if err != nil {
		return audit.Checkpoint{}, err
	}
	old, err := audit.OpenCheckpoint(data, vkey)
	if err != nil {
		return old, fault.E("audit", fault.Integrity, c.Since+" is not a checkpoint signed by this switch: "+err.Error())
	}
	if old.Size > cp.Size {
		return old, restoredGap(e, cl, old, fault.Errorf("audit", fault.Integrity, "the switch's log (%d entries) is smaller than the earlier checkpoint's (%d): entries were removed", cp.Size, old.Size))
	}
	path, err := cl.AuditConsistency(e.ctx, old.Size, cp.Size)
	if err != nil {
		return old, err
	}
	if err := audit.VerifyConsistency(old.Size, cp.Size, path, old.Hash, cp.Hash); err != nil {
		return old, restoredGap(e, cl, old, fault.Errorf("audit", fault.Integrity, "the log of size %d is not an extension of the earlier checkpoint of size %d: %v", cp.Size, old.Size, err))
	}
	return old, nil
}

// restoredGap explains a checkpoint the log is not consistent with when
// the switch records a restore from a backup taken before it was signed:
// the entries from the backup's size on are a gap the switch stated, not
// a silent rewrite. Otherwise it returns failed as it is.
func restoredGap(e *env, cl *client.Client, old audit.Checkpoint, failed error) error {
	got, err := cl.AuditQuery(e.ctx, wire.AuditQuery{Event: audit.Restored, Newest: true, Limit: 100})
	if err != nil {
		return failed
	}
	for _, r := range got.Entries {
		if r.Index >= old.Size {
			continue
		}
		return fault.Errorf("audit", fault.Integrity, "the earlier checkpoint (size %d) was signed after the backup this switch was restored from: "+
			"the log was restored from a backup at log size %d (entry %d, %s: %s). The original's entries %d to %d are not in this log: a gap the switch "+
			"records, not a rewrite; a checkpoint of size %d or less verifies with --since", old.Size, r.Index, r.Index, e.when(r.At), r.Reason, r.Index, old.Size-1, r.Index)
	}
	return failed
}

// readFile reads a named file, or standard input for "-".
func (e *env) readFile(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(io.LimitReader(e.stdin, 64<<20))
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fault.E("audit", fault.NotExist, "cannot read "+name, err)
	}
	return b, nil
}
