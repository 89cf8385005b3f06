package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Completion scripts load in bash and complete from the command tree
// (the real tg binary answers the shell, as in use); the manual page is
// roff that groff reads without a macro, escape or character warning
// (line breaking is the reader's terminal's affair), with every command in it.
func TestCompletionAndManPage(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "tg")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	path := filepath.Dir(bin) + ":" + os.Getenv("PATH")
	// bash: the script loads, and the command it registers answers the
	// shell's completion requests from tg's command tree.
	script := `source <(tg completion bash) && complete -p tg
_cmd=$(complete -p tg | sed -E "s/.*-C '?([^' ]+)'? tg/\1/")
echo "certs: $(COMP_LINE="tg cer" COMP_POINT=6 $_cmd tg cer tg | sort | tr '\n' ' ')"
echo "re: $(COMP_LINE="tg certs re" COMP_POINT=11 $_cmd tg re certs | sort | tr '\n' ' ')"
echo "prec: $(COMP_LINE="tg send --pr" COMP_POINT=12 $_cmd tg --pr send | sort | tr '\n' ' ')"`
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+path)
	out, err := cmd.CombinedOutput()
	want := "complete -C 'tg' tg\ncerts: certs \nre: renew request revoke revoke-keys \nprec: --prec \n"
	if err != nil || string(out) != want {
		t.Fatalf("bash completion: %v\n%q\nwant %q", err, out, want)
	}
	for _, shell := range []string{"zsh", "fish"} {
		if r := tg(t, "", "completion", shell); r.code != 0 || !strings.Contains(r.stdout, "tg") {
			t.Errorf("tg completion %s: %d %s", shell, r.code, r.stderr)
		}
	}
	r := tg(t, "", "man")
	if r.code != 0 || !strings.HasPrefix(r.stdout, ".TH TG 1 ") {
		t.Fatalf("tg man: %d %.200s", r.code, r.stdout)
	}
	for _, c := range []string{"send", "inbox", "sent", "certs request", "audit verify", "EXIT STATUS"} {
		if !strings.Contains(strings.ToUpper(r.stdout), strings.ToUpper(`\fB`+c)) && !strings.Contains(r.stdout, ".SH \""+c+"\"") && !strings.Contains(r.stdout, ".SH "+c) {
			t.Errorf("the manual page lacks %q", c)
		}
	}
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Skip("no groff to read the page")
	}
	page := filepath.Join(t.TempDir(), "tg.1")
	os.WriteFile(page, []byte(r.stdout), 0o644)
	if out, err := exec.Command(groff, "-man", "-Tutf8", "-Wall", "-wmac", "-wescape", "-winput", "-wchar", "-wsyntax", "-wmissing", "-z", page).CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("groff on tg.1: %v\n%s", err, out)
	}
}
