package daemontest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// SoftHSM is Debian's SoftHSM2 PKCS#11 module.
const SoftHSM = "/usr/lib/softhsm/libsofthsm2.so"

// SoftTokens are the SoftHSM2 tokens SoftToken makes, by label. The module
// reads its configuration and finds its tokens once per process (tg runs
// in-process in its tests), so every token a test process uses is made
// at the first call, in one folder.
var SoftTokens = []string{"dienbao", "ca", "switch"}

var softHSM struct {
	once sync.Once
	dir  string
	err  error
}

// SoftToken returns the URI of an object in the SoftHSM2 token labelled
// label (one of SoftTokens; user PIN 123456, in a file), and sets
// SOFTHSM2_CONF for the test (and the programs it starts). Without
// SoftHSM2 the test is skipped, or fails under CI (.ci/run installs it).
// Call RemoveSoftHSM when the process's tests are done.
func SoftToken(t *testing.T, label string) func(object string) string {
	t.Helper()
	util, err := exec.LookPath("softhsm2-util")
	if _, serr := os.Stat(SoftHSM); err != nil || serr != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("SoftHSM2 is not installed: .ci/run installs softhsm2")
		}
		t.Skip("SoftHSM2 is not installed (package softhsm2)")
	}
	softHSM.once.Do(func() { softHSM.dir, softHSM.err = makeSoftTokens(util) })
	if softHSM.err != nil {
		t.Fatal(softHSM.err)
	}
	t.Setenv("SOFTHSM2_CONF", filepath.Join(softHSM.dir, "softhsm2.conf"))
	pin := filepath.Join(softHSM.dir, "pin")
	return func(object string) string {
		return "pkcs11:token=" + label + ";object=" + object + "?module-path=" + SoftHSM + "&pin-source=file:" + pin
	}
}

// makeSoftTokens makes a token folder with every one of SoftTokens.
func makeSoftTokens(util string) (string, error) {
	d, err := os.MkdirTemp("", "dienbao-softhsm-")
	if err != nil {
		return "", err
	}
	conf := filepath.Join(d, "softhsm2.conf")
	if err := os.Mkdir(filepath.Join(d, "tokens"), 0o700); err != nil {
		return d, err
	}
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(d, "tokens")+"\nobjectstore.backend = file\n"), 0o600); err != nil {
		return d, err
	}
	if err := os.WriteFile(filepath.Join(d, "pin"), []byte("123456\n"), 0o600); err != nil {
		return d, err
	}
	for _, l := range SoftTokens {
		cmd := exec.Command(util, "--init-token", "--free", "--label", l, "--pin", "123456", "--so-pin", "654321")
		cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+conf)
		if out, err := cmd.CombinedOutput(); err != nil {
			return d, fmt.Errorf("softhsm2-util: %v\n%s", err, out)
		}
	}
	return d, nil
}

// RemoveSoftHSM removes the token folder SoftToken made, if any (from a
// package's TestMain, after its tests).
func RemoveSoftHSM() {
	if softHSM.dir != "" {
		os.RemoveAll(softHSM.dir)
	}
}
