// Package completion owns the commands' shell completion: a script per
// shell that hands completion back to the command itself, and the answer
// the command gives from its kong command tree (kongplete, on
// github.com/posener/complete's protocol), so that completion cannot drift
// from the commands.
package completion

import (
	"fmt"
	"os"
	"strings"

	"github.com/alecthomas/kong"
	"github.com/posener/complete"
	"github.com/willabides/kongplete"
)

// Shells are the shells a script is made for.
var Shells = []string{"bash", "zsh", "fish"}

// Script is the completion script of command (tg, switchd) for shell: the
// shell runs the command with COMP_LINE set, and the command answers.
func Script(shell, command string) (string, error) {
	switch shell {
	case "bash":
		return fmt.Sprintf("complete -C %s %s\n", command, command), nil
	case "zsh":
		return fmt.Sprintf("autoload -U +X bashcompinit && bashcompinit\ncomplete -C %s %s\n", command, command), nil
	case "fish":
		return strings.ReplaceAll(`function __complete_CMD
    set -lx COMP_LINE (commandline -cp)
    test -z (commandline -ct)
    and set COMP_LINE "$COMP_LINE "
    CMD
end
complete -f -c CMD -a "(__complete_CMD)"
`, "CMD", command), nil
	}
	return "", fmt.Errorf("no completion for the shell %q: bash, zsh or fish", shell)
}

// Answer answers a shell asking for completions (COMP_LINE set) from
// parser's command tree and reports whether it did: the command is then
// done. Without COMP_LINE it does nothing (the tree is not walked for
// every command).
//
// A flag tagged predictor:"shell" is completed with the shells.
func Answer(parser *kong.Kong) bool {
	if os.Getenv("COMP_LINE") == "" {
		return false
	}
	answered := false
	kongplete.Complete(parser, kongplete.WithExitFunc(func(int) { answered = true }),
		kongplete.WithPredictor("shell", complete.PredictSet(Shells...)))
	return answered
}
