package certs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A CA key, like any file holding a secret, that the group or others may
// read is refused, with the mend in the message.
func TestCheckPrivate(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Save(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCA(dir); err != nil {
		t.Fatalf("a CA key of mode 0600: %v", err)
	}
	key := filepath.Join(dir, CAKeyFile)
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660} {
		os.Chmod(key, mode)
		if _, err := LoadCA(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("a CA key of mode %04o: %v", mode, err)
		}
	}
}
