package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

type auditProofCmd struct {
	ID  string `arg:"" help:"Telegram ID."`
	Out string `type:"path" help:"Also write the bundle (JSON) to this file."`
}

func (c *auditProofCmd) Run(e *env) error {
	id, cl, err := e.dialAbout(c.ID)
	if err != nil {
		return err
	}
	defer cl.Close()
	b, err := cl.AuditProof(e.ctx, id)
	if err != nil {
		return err
	}
	cp, entries, err := b.Check("")
	if err != nil {
		return fault.E("audit", fault.Integrity, "the switch's proof does not verify", err)
	}
	if c.Out != "" {
		data, err := json.MarshalIndent(b, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(c.Out, append(data, '\n'), 0o644); err != nil {
			return fault.E("audit", fault.Internal, "cannot write "+c.Out, err)
		}
	}
	if e.json {
		return e.emit(b)
	}
	fmt.Fprintf(e.stdout, "telegram %s: %d audit entries, each proven in the log of %d entries signed by %s\n",
		id, len(entries), cp.Size, cp.Origin)
	printEntries(e, entries)
	printArchived(e, b)
	if c.Out == "" {
		fmt.Fprintln(e.stdout, "save the bundle for a third party with --json or --out FILE; check it with tg audit check-proof FILE")
	}
	return nil
}

func printEntries(e *env, entries []audit.Entry) {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	for _, en := range entries {
		row := auditRow(en)
		row[1] = en.At.Local().Format("2006-01-02 15:04:05.000")
		row = append(row[:4], row[5:]...) // the ID is the bundle's
		fmt.Fprintln(tw, "  "+strings.Join(row, "\t"))
	}
	tw.Flush()
}

type auditCheckProofCmd struct {
	File    string   `arg:"" help:"The bundle (JSON from tg audit proof --json), or - for standard input."`
	Key     string   `help:"The switch's published verifier key; the bundle must be signed with it."`
	Archive []string `type:"existingfile" help:"An audit archive file (from the switch's audit-archive folder) holding archived entries of the bundle: each is checked against it. Repeatable."`
	witnessPolicy
}

func (c *auditCheckProofCmd) Run(e *env) error {
	data, err := e.readFile(c.File)
	if err != nil {
		return err
	}
	var b audit.Bundle
	if err := json.Unmarshal(data, &b); err != nil {
		return fault.E("audit", fault.Invalid, c.File+" is not a proof bundle", err)
	}
	cp, entries, err := b.Check(c.Key)
	if err != nil {
		return fault.E("audit", fault.Integrity, "the proof does not verify: "+err.Error())
	}
	if n := c.required(); n > 0 {
		if _, err := audit.Witnessed([]byte(b.Checkpoint), b.VerifierKey, c.Witness, n); err != nil {
			return fault.E("audit", fault.Integrity, fmt.Sprintf("the bundle's checkpoint is not cosigned by %d of the --witness keys: %v", n, err))
		}
	}
	files := map[string]audit.ArchiveFile{}
	for _, p := range c.Archive {
		head, hashes, err := audit.ReadArchive(p)
		if err != nil {
			return fault.E("audit", fault.Invalid, "cannot read archive file "+p, err)
		}
		files[filepath.Base(p)] = audit.ArchiveFile{Head: head, Hashes: hashes}
	}
	checked, err := audit.CheckArchived(b, files)
	if err != nil {
		return fault.E("audit", fault.Integrity, "the proof does not match the archive: "+err.Error())
	}
	archived := 0
	for _, en := range b.Entries {
		if en.Archive != "" {
			archived++
		}
	}
	if e.json {
		return e.emit(map[string]any{"ok": true, "id": b.ID, "entries": entries, "origin": cp.Origin,
			"size": cp.Size, "root": base64.StdEncoding.EncodeToString(cp.Hash), "verifier_key": b.VerifierKey,
			"archived": archived, "archive_checked": checked})
	}
	fmt.Fprintf(e.stdout, "OK: telegram %s, %d entries included in the log of %d entries (origin %s)\n",
		b.ID, len(entries), cp.Size, cp.Origin)
	if n := c.required(); n > 0 {
		fmt.Fprintf(e.stdout, "cosigned by at least %d of the given witnesses\n", n)
	}
	printEntries(e, entries)
	if archived > 0 {
		fmt.Fprintf(e.stdout, "%d of them archived; %d checked against their archive file\n", archived, checked)
		if checked < archived {
			printArchived(e, b)
		}
	}
	keyHint(e, c.Key, b.VerifierKey)
	return nil
}

// printArchived says where each archived entry of b is kept.
func printArchived(e *env, b audit.Bundle) {
	for _, en := range b.Entries {
		if en.Archive != "" {
			fmt.Fprintf(e.stdout, "  entry %d is archived in %s (the switch's audit-archive folder); check it with tg audit check-proof --archive %s\n",
				en.Index, en.Archive, en.Archive)
		}
	}
}

type auditArchiveCmd struct {
	OlderThan string `name:"older-than" placeholder:"DURATION" help:"Archive the entries older than this (a Go duration: 2160h, 30m, 0s; default: the switch's [audit] archive_after). Only entries covered by a signed checkpoint go."`
}

func (c *auditArchiveCmd) Run(e *env) error {
	var age *time.Duration
	if c.OlderThan != "" {
		d, err := time.ParseDuration(c.OlderThan)
		if err != nil || d < 0 {
			return fault.Errorf("audit", fault.Invalid, "--older-than %q: give a duration such as 2160h or 30m", c.OlderThan)
		}
		age = &d
	}
	cl, err := e.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	r, err := cl.AuditArchive(e.ctx, age)
	if err != nil {
		return err
	}
	if r.Files == nil {
		r.Files = []string{}
	}
	if e.json {
		return e.emit(r)
	}
	if len(r.Files) == 0 {
		fmt.Fprintf(e.stdout, "nothing to archive; entries below %d are archived\n", r.Below)
		return nil
	}
	fmt.Fprintf(e.stdout, "%d entries archived in %s: %s; entries below %d are archived\n", r.Entries, r.Dir, strings.Join(r.Files, ", "), r.Below)
	return nil
}

type auditVerifyCmd struct {
	Key string `help:"The switch's published verifier key; every checkpoint must be signed with it (default: the key the switch presents)."`
}

func (c *auditVerifyCmd) Run(e *env) error {
	cl, err := e.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	latest, _, err := cl.AuditCheckpoint(e.ctx) // signs the log as it stands
	if err != nil {
		return err
	}
	notes, vkey, err := cl.AuditCheckpoints(e.ctx)
	if err != nil {
		return err
	}
	if c.Key != "" && c.Key != vkey {
		return fault.E("audit", fault.Integrity, "the switch presents a different verifier key than --key")
	}
	v := audit.NewVerifier()
	var top audit.Checkpoint
	for _, n := range append(notes, latest) {
		cp, err := audit.OpenCheckpoint(n, vkey)
		if err != nil {
			return fault.E("audit", fault.Integrity, "a stored checkpoint does not verify: "+err.Error())
		}
		v.Expect(cp)
		if cp.Size >= top.Size {
			top = cp
		}
	}
	bar := e.progress(int64(top.Size), "verifying")
	err = cl.AuditLeaves(e.ctx, 0, func(l wire.AuditLeaf) error {
		if err := v.Add(l.Index, l.Leaf); err != nil {
			return &verifyFailure{err}
		}
		return nil
	}, func(next uint64) { bar.Set64(int64(min(next, top.Size))) })
	var vf *verifyFailure
	if errors.As(err, &vf) {
		return c.failed(e, cl, v, bar, vf.err)
	}
	if err != nil {
		return err
	}
	if err := v.Finish(); err != nil {
		return c.failed(e, cl, v, bar, err)
	}
	bar.Finish()
	if e.json {
		return e.emit(map[string]any{"ok": true, "entries": v.Size(), "checkpoints": len(v.Checked()),
			"latest_size": top.Size, "root": base64.StdEncoding.EncodeToString(top.Hash), "verifier_key": vkey})
	}
	fmt.Fprintf(e.stdout, "OK: %d entries; the tree matches all %d signed checkpoints; latest: size %d, root %s\n",
		v.Size(), len(v.Checked()), top.Size, base64.StdEncoding.EncodeToString(top.Hash))
	keyHint(e, c.Key, vkey)
	return nil
}

// failed reports a verification failure, first narrowing a checkpoint
// mismatch down to the entry with consistency proofs from the switch.
func (c *auditVerifyCmd) failed(e *env, cl *client.Client, v *audit.Verifier, bar *progressbar.ProgressBar, err error) error {
	bar.Exit()
	var m *audit.Mismatch
	if !errors.As(err, &m) {
		return fault.E("audit", fault.Integrity, "the audit log does not verify: "+err.Error())
	}
	if m.Checkpoint > 0 && m.Last > m.Index {
		located, lerr := v.Locate(func(size1, size2 uint64) ([][]byte, error) {
			return cl.AuditConsistency(e.ctx, size1, size2)
		})
		if lerr == nil {
			m = located
		} else {
			fmt.Fprintln(e.stderr, "tg: cannot narrow the mismatch down to one entry:", lerr)
		}
	}
	if e.json {
		out := map[string]any{"ok": false, "first_bad_index": m.Index, "reason": m.Why}
		if m.Checkpoint > 0 {
			out["checkpoint_size"] = m.Checkpoint
		}
		if m.Last > m.Index {
			out["last_index"] = m.Last
		}
		e.emit(out)
	}
	if m.Checkpoint > 0 && m.Last > m.Index {
		return fault.Errorf("audit", fault.Integrity, "the audit log does not verify: entries %d..%d do not match the signed checkpoint of size %d: %s",
			m.Index, m.Last, m.Checkpoint, m.Why)
	}
	return fault.Errorf("audit", fault.Integrity, "the audit log does not verify at entry %d: %s", m.Index, m.Why)
}

// keyHint reminds the user, when no key was pinned with --key, that the
// signature only counts if the key is the switch's published one.
func keyHint(e *env, pinned, vkey string) {
	if pinned == "" {
		fmt.Fprintf(e.stdout, "signed by %s\ncompare it with the switch's published verifier key, or pass it with --key\n", vkey)
	}
}

// verifyFailure carries a verification error out of the leaf walk, apart
// from errors talking to the switch.
type verifyFailure struct{ err error }

func (f *verifyFailure) Error() string { return f.err.Error() }

// progress is a progress bar on standard error when it is a terminal,
// silent otherwise.
func (e *env) progress(max int64, what string) *progressbar.ProgressBar {
	if f, ok := e.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return progressbar.NewOptions64(max, progressbar.OptionSetWriter(f), progressbar.OptionSetDescription(what),
			progressbar.OptionShowCount(), progressbar.OptionThrottle(100e6), progressbar.OptionClearOnFinish())
	}
	return progressbar.DefaultSilent(max)
}
