package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/alecthomas/kong"
	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/switch/buildinfo"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/completion"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"golang.org/x/term"
)

// cli is the whole command tree.
type cli struct {
	ID      string           `name:"id" env:"TG_ID" type:"path" help:"Identity folder (certificate, key, CA, switch address)."`
	JSON    bool             `name:"json" help:"Print JSON: one object for one result, JSON Lines for many."`
	Version kong.VersionFlag `help:"Print the version, the source revision and the Go version, and exit."`
	UTC     bool             `name:"utc" help:"Print times in UTC (default: this machine's local time zone, which is shown)."`
	Raw     bool             `name:"raw" help:"Print what came from others (bodies, subjects, names, reasons) exactly as received, escape sequences included. Without it they are shown safe: control and bidirectional characters escaped visibly."`

	Send        sendCmd        `cmd:"" help:"File a telegram."`
	Inbox       inboxCmd       `cmd:"" help:"Receive this agency's telegrams, most urgent first, storing each before acknowledging."`
	Receipts    receiptsCmd    `cmd:"" help:"Receive delivery reports for telegrams this agency filed."`
	Sent        sentCmd        `cmd:"" help:"What this terminal filed, with each addressee's delivery state (the reports waiting at the switch are taken first)."`
	Retrieve    retrieveCmd    `cmd:"" help:"A copy of a telegram from the switch's journal: one this agency sent, or was delivered; any for an auditor. Marked as a copy, never stored as a delivery."`
	Resend      resendCmd      `cmd:"" help:"Send a delivered telegram again, flagged possible duplicate (the sender agency or an operator)."`
	Journal     journalCmd     `cmd:"" help:"List the telegrams an agency sent or was sent, newest first, from custody and the journal: header fields only."`
	Certs       certsCmd       `cmd:"" help:"PKI: create the CA, issue certificates."`
	Keys        keysCmd        `cmd:"" help:"Encryption at rest: rotate the data-encryption key (operator)."`
	AgencyKeys  agencyKeysCmd  `cmd:"" name:"agency-keys" help:"End-to-end sealing: this agency's key pairs (make, list, import)."`
	Verify      verifyCmd      `cmd:"" help:"Check a telegram's signature, content and audit proof offline: a proof from tg export-proof, or a stored telegram."`
	ExportProof exportProofCmd `cmd:"" name:"export-proof" help:"Write a proof of a received telegram a third party can check with no access to the switch: signature, sender's key and its certification, the switch's audit proof of filing and delivery."`
	Clock       clockCmd       `cmd:"" help:"The switch's clock, and whether it trusts it; --confirm vouches for its wall clock (operator)."`
	Audit       auditCmd       `cmd:"" help:"The verifiable audit log: query, verify, prove, export."`
	Queues      queuesCmd      `cmd:"" help:"Queue figures per agency and precedence (operator)."`
	List        listCmd        `cmd:"" help:"The telegrams in custody, one row per addressee copy, with filters and pages, as mailq lists a queue: header fields only (operator)."`
	Notice      noticeCmd      `cmd:"" help:"Incident notices between operators: post one (--affects PREFIX|link:PEER --until TIME TEXT), close one (--close N), or list the open ones (operator)."`
	MoveQueue   moveQueueCmd   `cmd:"" name:"move-queue" help:"Re-address every telegram waiting for an agency to another (a merger): IDs, precedence and order kept, each sender told MOVED, audited (operator)."`
	Sessions    sessionsCmd    `cmd:"" help:"Connected terminals and users (operator)."`
	Show        showCmd        `cmd:"" help:"A telegram's header and per-addressee state, never its subject or body (operator)."`
	Hold        holdCmd        `cmd:"" help:"Hold a telegram (or --agency A: all deliveries to an agency; --link PEER: a link to a peer switch) until released (operator)."`
	Release     releaseCmd     `cmd:"" help:"Release a held telegram (or --agency A, --link PEER) (operator)."`
	Links       linksCmd       `cmd:"" help:"The links to peer switches in a network: state, waiting copies, sequence numbers, round trip (operator)."`
	Group       groupCmd       `cmd:"" help:"A replicated switch's group: members, leader, term, applied index, lag and last contact per member (status); add or remove a member (operator)."`
	Cancel      cancelCmd      `cmd:"" help:"Cancel a telegram for every addressee still waiting; the sender is told why (operator)."`
	Requeue     requeueCmd     `cmd:"" help:"Put a parked telegram back in its queues (operator)."`
	Minimize    minimizeCmd    `cmd:"" help:"MINIMIZE: restrict filings below a precedence during an emergency (operator: --below ... to declare, --lift to lift); without flags, list those in force (terminals: those covering their agency)."`
	Top         topCmd         `cmd:"" help:"A live view of queues, rates and overdue telegrams (operator)."`
	Bench       benchCmd       `cmd:"" help:"Load generator: file and receive through the real switch, report throughput and latency."`
	Completion  completionCmd  `cmd:"" help:"Print the shell completion script for bash, zsh or fish: source <(tg completion bash)."`
	Man         manCmd         `cmd:"" help:"Print tg's manual page (roff), made from these command definitions: tg man > /usr/local/share/man/man1/tg.1"`
}

// env is what every command gets.
type env struct {
	ctx    context.Context
	id     string
	loaded *certs.Folder // the identity folder, once loaded
	json   bool
	raw    bool // print text from others as received (--raw)
	utc    bool // print times in UTC (--utc)
	stdin  io.Reader
	mu     sync.Mutex // serialises output from concurrent handlers
	stdout io.Writer
	stderr io.Writer
}

// folder loads the identity folder, once.
func (e *env) folder() (*certs.Folder, error) {
	if e.loaded == nil {
		f, err := certs.LoadFolder(e.id)
		if err != nil {
			return nil, err
		}
		e.loaded = f
	}
	return e.loaded, nil
}

// dial connects with the identity folder.
func (e *env) dial() (*client.Client, error) {
	f, err := e.folder()
	if err != nil {
		return nil, err
	}
	return client.Dial(e.ctx, f)
}

// dialAbout parses a telegram ID argument, then connects: the start of
// every command about one telegram.
func (e *env) dialAbout(idText string) (telegram.ID, *client.Client, error) {
	id, err := telegram.ParseID(idText)
	if err != nil {
		return id, nil, err
	}
	cl, err := e.dial()
	return id, cl, err
}

// inbox opens the identity's sealed inbox folder (default: inbox/ in the
// identity folder).
func (e *env) inbox(out string) (*client.Inbox, error) {
	f, err := e.folder()
	if err != nil {
		return nil, err
	}
	key, err := client.InboxKey(f)
	if err != nil {
		return nil, err
	}
	if out == "" {
		out = filepath.Join(e.id, "inbox")
	}
	in := &client.Inbox{Dir: out, Key: key}
	if old, err := oldInboxKey(e.id); err == nil && old != nil {
		in.OldKeys = [][]byte{old} // renewed: files not yet re-sealed
	}
	return in, nil
}

// oldInboxKey is the inbox key of the private key a renewal replaced
// (key.pem.old), nil if there is none.
func oldInboxKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, certs.FolderKey+".old")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil
	}
	k, err := certs.ParseKey(path, data, certs.DefaultPassphrase)
	if err != nil {
		return nil, err
	}
	return client.InboxKeyOf(k)
}

// emit prints v as one JSON line.
func (e *env) emit(v any) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	b, err := json.Marshal(noNulls(v))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", b)
	return err
}

// Exit statuses, one per error kind.
const (
	exitOK          = 0
	exitInternal    = 1
	exitInvalid     = 2 // bad input or usage
	exitPermission  = 3
	exitNotExist    = 4
	exitTooLarge    = 5
	exitUnavailable = 6
	exitIntegrity   = 7
	exitMinimized   = 8 // refused under MINIMIZE
	exitDone        = 9 // the action had already happened: nothing changed
)

func exitCode(err error) int {
	switch fault.KindOf(err) {
	case fault.Invalid:
		return exitInvalid
	case fault.Permission:
		return exitPermission
	case fault.NotExist:
		return exitNotExist
	case fault.TooLarge:
		return exitTooLarge
	case fault.Unavailable:
		return exitUnavailable
	case fault.Integrity:
		return exitIntegrity
	case fault.Minimized:
		return exitMinimized
	case fault.Done:
		return exitDone
	}
	return exitInternal
}

type exitPanic int

// run is main without the process: tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	var c cli
	defer func() {
		if r := recover(); r != nil {
			if p, ok := r.(exitPanic); ok {
				code = int(p)
				return
			}
			panic(r)
		}
	}()
	parser, err := kong.New(&c, kong.Name("tg"),
		kong.Description("dienbao telegraph client: file, receive, report, administer.\n\n"+
			"tg is the one command line of dienbao's terminals, operators, auditors and PKI officer. An identity folder "+
			"(--id or TG_ID) says who it is and which switch it talks to. The README that comes with dienbao has the walk-throughs."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { panic(exitPanic(code)) }),
		kong.Vars{"version": buildinfo.Get().Line("tg")},
		kong.UsageOnError())
	if err != nil {
		fmt.Fprintln(stderr, "tg:", err)
		return exitInternal
	}
	// A shell asking for completions (COMP_LINE set): answered from the
	// command tree, then done.
	if completion.Answer(parser) {
		return exitOK
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintln(stderr, "tg:", err)
		return exitInvalid
	}
	e := &env{ctx: ctx, id: c.ID, json: c.JSON, raw: c.Raw, utc: c.UTC, stdin: stdin, stdout: stdout, stderr: stderr}
	if err := kctx.Run(e); err != nil {
		fmt.Fprintln(stderr, "tg:", err)
		return exitCode(err)
	}
	return exitOK
}

// when prints t for a person: in the local time zone (UTC with --utc),
// to the second, with the zone.
func (e *env) when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	if e.utc {
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	return t.In(localZone()).Format("2006-01-02 15:04:05 MST")
}

// localZone is the zone times print in (tests set another).
var localZone = func() *time.Location { return time.Local }

// stdinTerminal says whether standard input is a terminal (a clerk
// typing, not a pipe).
func (e *env) stdinTerminal() bool {
	f, ok := e.stdin.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// isTerminal says whether standard output is a terminal.
func (e *env) isTerminal() bool {
	f, ok := e.stdout.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
