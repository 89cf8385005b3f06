package main

import (
	"fmt"

	"github.com/alecthomas/kong"
	"github.com/dienbao/dienbao/switch/completion"
	"github.com/dienbao/dienbao/switch/manpage"
)

// Shell completion and the manual page, both made from the command tree
// (kongplete, mango-kong): nothing to keep in step by hand.

type completionCmd struct {
	Shell string `arg:"" enum:"bash,zsh,fish" help:"bash, zsh or fish."`
}

func (c *completionCmd) Run(e *env) error {
	script, err := completion.Script(c.Shell, "tg")
	if err == nil {
		_, err = fmt.Fprint(e.stdout, script)
	}
	return err
}

type manCmd struct{}

func (c *manCmd) Run(e *env, k *kong.Kong) error {
	_, err := fmt.Fprint(e.stdout, manpage.Build(k.Model, 1,
		manpage.Section{Title: "Exit status", Text: exitStatusText},
		manpage.Section{Title: "Environment", Text: "TG_ID: the identity folder, as --id. DIENBAO_KEY_PASSPHRASE_FILE: a file holding the passphrase of encrypted keys (tg asks on a terminal otherwise)."},
		manpage.Section{Title: "Files", Text: "The identity folder: cert.pem, key.pem, ca.pem, switch, the sealed inbox/ (with sent/ and receipts/), attachments/ID/."}))
	return err
}

// exitStatusText is the exit status section of the manual page.
const exitStatusText = `
0 done; 1 internal error; 2 bad input or usage; 3 not permitted; 4 no such thing; 5 too large; 6 unavailable (retry);
7 integrity (a check failed); 8 refused under MINIMIZE; 9 already done (nothing changed).
`
