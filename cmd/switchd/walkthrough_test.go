package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// walkThroughMarker precedes the README's production walk-through.
const walkThroughMarker = "<!-- production walk-through: run verbatim by cmd/switchd TestProductionWalkThrough -->"

// The README's production walk-through, run as it is: a CA of a root and
// an intermediate, every certificate by request, agency keys, a directory,
// a key-encryption key, a config; the switch started as a service would
// be; a telegram filed, received and reported; the switch renewing its
// own CRL; a revocation that bites; a renewal; a backup while it serves;
// the audit log verified; a clean stop. In a network namespace of its own
// (as root) so that its fixed port is its own.
func TestProductionWalkThrough(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), walkThroughMarker+"\n```sh\n")
	script, _, ok2 := strings.Cut(rest, "```\n")
	if !ok || !ok2 {
		t.Fatal("the README has no production walk-through block")
	}
	bin := filepath.Dir(buildSwitchd(t))
	if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, "tg"), "../tg").CombinedOutput(); err != nil {
		t.Fatalf("go build tg: %v\n%s", err, out)
	}
	for _, tool := range []string{"openssl", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the walk-through needs %s", tool)
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "walk.sh"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var cmd *exec.Cmd
	if _, err := exec.LookPath("unshare"); err == nil && os.Geteuid() == 0 {
		cmd = exec.CommandContext(ctx, "unshare", "--net", "bash", "-c", "ip link set lo up && exec bash -euo pipefail walk.sh")
	} else {
		cmd = exec.CommandContext(ctx, "bash", "-euo", "pipefail", "walk.sh")
	}
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "site", "switchd.log"))
		t.Fatalf("the walk-through failed: %v\n%s\nswitchd.log:\n%s", err, out, log)
	}
	t.Logf("the walk-through's output:\n%s", out)
	for _, want := range []string{
		"dienbao switchd ",
		"CA created in ",
		`signed switch certificate `,
		`/ids/auditor installed: auditor certificate `,
		"certified NA.UBND/",
		"!!!!!!!!  HỎA TỐC · FLASH  ·  TỐI MẬT · SECRET  !!!!!!!!",
		"Signed:  sealed end to end; signature by HN.UBND verified",
		"Subject: Báo cáo\n\nNội dung báo cáo\n",
		"  NA.UBND        DELIVERED  ",
		"the switch signed a fresh revocation list (number 2, 0 revoked)",
		"CRL number 2 from dienbao network CA issuing CA: 0 revoked",
		"tg: dial: the switch refused this certificate",
		"/ids/HN.UBND renewed: the new key and certificate are in place",
		"backup taken at ",
		"OK: ",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the walk-through's output lacks %q", want)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "switch.backup")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the backup: %v %v, want mode 0600", fi, err)
	}
}
