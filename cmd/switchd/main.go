// Command switchd is the dienbao switch daemon.
//
//	switchd --dev [--data DIR] [--listen HOST:PORT] [--http HOST:PORT]   a local dev site, no setup
//	switchd --dev --network [--data DIR]              a dev network of three switches
//	switchd --dev --group [--data DIR]                a dev replicated switch of three nodes
//	switchd --config FILE [--http HOST:PORT]          production
//	switchd backup --config FILE OUT                 a consistent backup, the switch running or stopped
//	switchd restore --config FILE BACKUP             restore a backup (switch stopped, store moved aside)
//	switchd --config FILE --rewrap --new-key-file F   re-wrap the keyring (switch stopped)
//	switchd --config FILE --rewrap --new-passphrase-file F
//
// SIGTERM or SIGINT drains and exits; SIGHUP reloads the agency directory
// and the limits.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"

	"github.com/alecthomas/kong"
	"github.com/dienbao/dienbao/switch/buildinfo"
	"github.com/dienbao/dienbao/switch/completion"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/manpage"
)

type cli struct {
	Action string `arg:"" optional:"" enum:"run,backup,restore" default:"run" help:"run (the default): serve. backup: write a consistent backup of the switch named by --config to FILE (- for standard output), while it runs or stopped. restore: restore the backup FILE into the data folder of --config (the switch stopped, its store folder moved aside)."`
	File   string `arg:"" optional:"" help:"With backup: where to write it (- for standard output); with restore: the backup to restore."`
	Rate   int    `default:"32" help:"With backup of a running switch: at most this many MiB a second, so that the switch keeps its pace meanwhile (0: no limit)."`

	Dev     bool   `help:"Run a local dev site: create a CA, certificates, a directory and demo identities under --data if absent, and serve on loopback."`
	Network bool   `help:"With --dev: run a dev network of three switches in this process (TW, the centre; HN and NA, provinces), each a dev site under --data, listening on --listen and the next two ports."`
	Group   bool   `help:"With --dev: run a dev replicated switch of three nodes in this process (a Raft group; one leader serves), under --data, listening on --listen and the next two ports (and 100 above those for the nodes' own traffic)."`
	Data    string `help:"Dev site folder (default dienbao-dev; with --network, dienbao-net; with --group, dienbao-group)." type:"path"`
	Listen  string `help:"UDP address to listen on (dev mode; production takes it from the config file)." default:"127.0.0.1:4433"`
	Config  string `help:"Production config file (TOML)." type:"existingfile" xor:"mode"`
	HTTP    string `name:"http" help:"Monitoring listener (metrics, health, web console), TCP HOST:PORT; keep it on loopback. Dev mode default 127.0.0.1:4480; production: the config's http, else none."`

	Rewrap            bool   `help:"Protect the keyring with a new key file or passphrase, then exit (the switch must be stopped). Re-wraps keys only."`
	NewKeyFile        string `help:"With --rewrap: the new key file." type:"path"`
	NewPassphraseFile string `help:"With --rewrap: a file holding the new passphrase (or set DIENBAO_NEW_PASSPHRASE)." type:"path"`

	AllowPlain []string `name:"allow-plain" sep:"," help:"With --dev: classifications below SECRET that may be filed unsealed this run (the [end_to_end] allow_plain setting), e.g. UNCLASSIFIED: to compare with end-to-end sealing off (tg bench --plain), or to load a dev switch with plain telegrams."`
	AcceptLoss bool     `name:"accept-loss" help:"Start although the store is damaged: a write-ahead log with commits past a damaged entry, values missing from the value log, or an audit log shorter than its last checkpoint (whose copy is beside the keyring). Go on with what is left (telegrams whose bodies are missing are quarantined when due) and record the loss in the audit log. Restoring the store from a backup is the alternative."`

	CPUProfile string `name:"cpuprofile" help:"Write a CPU profile (pprof) of the whole run to this file, for performance work." type:"path"`
	MemProfile string `name:"memprofile" help:"Write an allocation profile (pprof) of the whole run to this file at exit, for performance work." type:"path"`
	// Lock contention is what a FLASH's goroutine may wait on besides a
	// CPU (issue 17: no FLASH behind routine work at any lock).
	MutexProfile string `name:"mutexprofile" help:"Write a lock-contention profile (pprof) of the whole run to this file at exit, for performance work." type:"path"`

	Version    kong.VersionFlag `help:"Print the version, the source revision and the Go version, and exit."`
	Man        manFlag          `help:"Print switchd's manual page (roff, section 8), made from these definitions, and exit: switchd --man > /usr/local/share/man/man8/switchd.8"`
	Completion string           `placeholder:"SHELL" predictor:"shell" help:"Print the shell completion script for bash, zsh or fish, and exit: switchd --completion bash > /etc/bash_completion.d/switchd. The shell then asks switchd itself, which answers from these definitions."`
}

// manFlag prints the manual page.
type manFlag bool

func (manFlag) BeforeApply(app *kong.Kong) error {
	fmt.Fprint(app.Stdout, manpage.Build(app.Model, 8,
		manpage.Section{Title: "Signals", Text: "SIGTERM or SIGINT: drain and exit (the store closes cleanly). SIGHUP: reload the agency directory, the limits and the CRL."},
		manpage.Section{Title: "Files", Text: "/etc/dienbao/switchd.toml (the config), /var/lib/dienbao (the data folder: store/, keyring.json, checkpoint.note, audit-archive/, control.sock)."},
		manpage.Section{Title: "Environment", Text: "DIENBAO_PASSPHRASE: the key-encryption passphrase (or passphrase_file, key_file in the config). DIENBAO_KEY_PASSPHRASE_FILE: the passphrase of encrypted TLS keys (or key_passphrase_file). NOTIFY_SOCKET: set by systemd (Type=notify)."}))
	app.Exit(0)
	return nil
}

func main() {
	var c cli
	parser, err := kong.New(&c, kong.Description("dienbao secure store-and-forward telegraph switch.\n\n"+
		"switchd keeps telegrams in encrypted queues, delivers the most urgent first, reports delivery to the sender and "+
		"writes every step into a verifiable audit log. It serves (--dev: a local dev site with no setup; --config FILE: "+
		"production), or takes (backup) and restores (restore) a consistent backup."),
		kong.Vars{"version": buildinfo.Get().Line("switchd")}, kong.UsageOnError())
	if err != nil {
		fmt.Fprintln(os.Stderr, "switchd:", err)
		os.Exit(1)
	}
	if completion.Answer(parser) {
		return
	}
	if _, err := parser.Parse(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "switchd:", err)
		os.Exit(2) // a usage error, as tg's
	}
	if c.Completion != "" {
		script, err := completion.Script(c.Completion, "switchd")
		if err != nil {
			fmt.Fprintln(os.Stderr, "switchd: --completion:", err)
			os.Exit(2)
		}
		fmt.Print(script)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	var stopProfiles func()
	stopProfiles, err = startProfiles(c)
	if err == nil {
		err = run(ctx, c)
		stopProfiles()
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "switchd:", err)
		os.Exit(1)
	}
}

// startProfiles starts what --cpuprofile and --memprofile ask for; the
// function it returns writes them out.
func startProfiles(c cli) (func(), error) {
	var cpu *os.File
	if c.CPUProfile != "" {
		f, err := os.Create(c.CPUProfile)
		if err != nil {
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
		cpu = f
	}
	if c.MutexProfile != "" {
		runtime.SetMutexProfileFraction(5) // one contention event in five
	}
	return func() {
		if cpu != nil {
			pprof.StopCPUProfile()
			cpu.Close()
		}
		if c.MemProfile != "" {
			writeProfile("allocs", c.MemProfile)
		}
		if c.MutexProfile != "" {
			writeProfile("mutex", c.MutexProfile)
		}
	}, nil
}

func run(ctx context.Context, c cli) error {
	if c.Data == "" {
		c.Data = "dienbao-dev"
		if c.Network {
			c.Data = "dienbao-net"
		}
		if c.Group {
			c.Data = "dienbao-group"
		}
	}
	switch {
	case c.Action != "run":
		return backupOrRestore(ctx, c)
	case c.Dev && c.Config != "":
		return fmt.Errorf("use either --dev or --config, not both")
	case len(c.AllowPlain) > 0 && !c.Dev:
		return fmt.Errorf("--allow-plain goes with --dev; in production it is the config's [end_to_end] allow_plain")
	case (c.Network || c.Group) && !c.Dev:
		return fmt.Errorf("--network and --group go with --dev")
	case c.Network && c.Group:
		return fmt.Errorf("use either --network or --group")
	case c.Dev && c.Group:
		cfgs, err := daemon.DevGroup(c.Data, c.Listen)
		if err != nil {
			return err
		}
		for _, cfg := range cfgs {
			cfg.EndToEnd.AllowPlain = c.AllowPlain
		}
		http := c.HTTP
		if http == "" {
			http = "127.0.0.1:4480"
		}
		return daemon.RunGroup(ctx, c.Data, cfgs, http, os.Stdout)
	case c.Dev && c.Network:
		cfgs, err := daemon.DevNetwork(c.Data, c.Listen)
		if err != nil {
			return err
		}
		for _, cfg := range cfgs {
			cfg.EndToEnd.AllowPlain = c.AllowPlain
		}
		http := c.HTTP
		if http == "" {
			http = "127.0.0.1:4480"
		}
		return daemon.RunNetwork(ctx, c.Data, cfgs, http, os.Stdout)
	case c.Dev:
		cfg, err := daemon.DevSite(c.Data, c.Listen)
		if err != nil {
			return err
		}
		cfg.EndToEnd.AllowPlain = c.AllowPlain
		cfg.HTTP = c.HTTP
		if cfg.HTTP == "" {
			cfg.HTTP = "127.0.0.1:4480"
		}
		return daemon.Run(ctx, daemon.Options{Config: cfg, DevDir: c.Data, AcceptLoss: c.AcceptLoss})
	case c.Config != "" && c.Rewrap:
		cfg, err := daemon.LoadConfig(c.Config)
		if err != nil {
			return err
		}
		to, err := daemon.NewSecret(c.NewKeyFile, c.NewPassphraseFile)
		if err != nil {
			return err
		}
		if err := daemon.Rewrap(cfg, to); err != nil {
			return err
		}
		fmt.Println("keyring re-wrapped: point key_file or passphrase_file in the config at the new secret")
		return nil
	case c.Rewrap:
		return fmt.Errorf("--rewrap needs --config FILE")
	case c.Config != "":
		cfg, err := daemon.LoadConfig(c.Config)
		if err != nil {
			return err
		}
		if c.HTTP != "" {
			cfg.HTTP = c.HTTP
		}
		return daemon.Run(ctx, daemon.Options{Config: cfg, ConfigPath: c.Config, AcceptLoss: c.AcceptLoss})
	}
	return fmt.Errorf("nothing to run: pass --dev for a local dev site or --config FILE")
}

// writeProfile writes the named profile of the run so far to file.
func writeProfile(name, file string) {
	f, err := os.Create(file)
	if err == nil {
		err = pprof.Lookup(name).WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "switchd: the %s profile: %v\n", name, err)
	}
}
