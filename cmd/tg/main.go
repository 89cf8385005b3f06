// Command tg is dienbao's one command line for terminals, operators,
// auditors and the PKI officer. See README.md for the walk-through and
// the JSON fields.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/dienbao/dienbao/certs"
	"golang.org/x/term"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	askOnTerminal()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// askOnTerminal makes passphrases asked on the terminal when tg runs on
// one (and DIENBAO_KEY_PASSPHRASE_FILE is not set): an encrypted key is
// asked for once per file.
func askOnTerminal() {
	if !term.IsTerminal(int(os.Stdin.Fd())) || !term.IsTerminal(int(os.Stderr.Fd())) {
		return
	}
	promptPassphrase = func(prompt string) ([]byte, error) {
		fmt.Fprint(os.Stderr, prompt)
		b, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(os.Stderr)
		return b, err
	}
	if os.Getenv(certs.PassphraseEnv) != "" {
		return
	}
	asked := map[string][]byte{}
	certs.DefaultPassphrase = func(path string) ([]byte, error) {
		if p, ok := asked[path]; ok {
			return p, nil
		}
		p, err := promptPassphrase("Passphrase for " + path + ": ")
		if err == nil {
			asked[path] = p
		}
		return p, err
	}
}
