package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dienbao/dienbao/switch/fault"
)

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "switchd.toml")
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	c, err := LoadConfig(write("data = \"d\"\nca = \"ca.pem\"\ncert = \"/etc/s.pem\"\nkey = \"s.key\"\ndirectory = \"dir.toml\"\nkey_file = \"/media/k\"\n[limits]\nmax_body = 1024\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Data != filepath.Join(dir, "d") || c.Cert != "/etc/s.pem" || c.Listen != "127.0.0.1:4433" || c.Log != "json" || c.Limits.filing().MaxBody != 1024 {
		t.Fatalf("config %+v", c)
	}
	for name, bad := range map[string]string{
		"missing key":     "data = \"d\"\nca = \"c\"\ncert = \"c\"\ndirectory = \"d\"\n",
		"unknown setting": "data = \"d\"\nca = \"c\"\ncert = \"c\"\nkey = \"k\"\ndirectory = \"d\"\nfsync = false\n",
		"bad log":         "data = \"d\"\nca = \"c\"\ncert = \"c\"\nkey = \"k\"\ndirectory = \"d\"\nlog = \"xml\"\n",
		"negative limit":  "data = \"d\"\nca = \"c\"\ncert = \"c\"\nkey = \"k\"\ndirectory = \"d\"\nkey_file = \"/k\"\n[limits]\nmax_body = -1\n",
		"negative procs":  "data = \"d\"\nca = \"c\"\ncert = \"c\"\nkey = \"k\"\ndirectory = \"d\"\nkey_file = \"/k\"\nprocs = -2\n",
		"no secret":       "data = \"d\"\nca = \"c\"\ncert = \"c\"\nkey = \"k\"\ndirectory = \"d\"\n",
		"key in data":     "data = \"d\"\nca = \"c\"\ncert = \"c\"\nkey = \"k\"\ndirectory = \"d\"\nkey_file = \"d/master.key\"\n",
	} {
		if _, err := LoadConfig(write(bad)); fault.KindOf(err) != fault.Invalid {
			t.Errorf("%s: %v, want an Invalid error", name, err)
		}
	}
}

func TestProcs(t *testing.T) {
	for _, c := range []struct{ procs, found, want int }{
		{0, 2, 4},  // default: twice the CPUs
		{0, 1, 2},  // one CPU
		{0, 0, 2},  // nothing found: as for one
		{3, 2, 3},  // configured
		{1, 16, 1}, // configured below the CPUs
	} {
		if got := Procs(c.procs, c.found); got != c.want {
			t.Errorf("Procs(%d, %d) = %d, want %d", c.procs, c.found, got, c.want)
		}
	}
}

// The dev site a production config file would describe starts the same way.
func TestDevSiteWritesUsableConfig(t *testing.T) {
	dir := t.TempDir()
	if _, err := DevSite(dir, "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(filepath.Join(dir, "switchd.toml"))
	if err != nil {
		t.Fatalf("the dev site's switchd.toml does not load: %v", err)
	}
	for _, p := range []string{c.CA, c.Cert, c.Key, c.Directory} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("config names %s: %v", p, err)
		}
	}
	// A second run keeps everything (same CA).
	before, _ := os.ReadFile(c.CA)
	if _, err := DevSite(dir, "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(c.CA)
	if string(before) != string(after) {
		t.Fatal("a second dev start replaced the CA")
	}
}

// A key file or passphrase file open to group or others is refused, as
// ssh refuses such a private key.
func TestSecretFilesMustBePrivate(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		cfg  Config
		path string
	}{
		{Config{KeyFile: filepath.Join(dir, "kek.key"), Data: filepath.Join(dir, "data")}, filepath.Join(dir, "kek.key")},
		{Config{PassphraseFile: filepath.Join(dir, "pass"), Data: filepath.Join(dir, "data")}, filepath.Join(dir, "pass")},
	} {
		os.WriteFile(c.path, []byte("secret\n"), 0o644)
		if _, err := c.cfg.Secret(); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("%s of mode 0644: %v", c.path, err)
		}
		os.Chmod(c.path, 0o600)
		if _, err := c.cfg.Secret(); err != nil {
			t.Errorf("%s of mode 0600: %v", c.path, err)
		}
	}
}

// The dev site's config file names its files relative to its own folder,
// as LoadConfig reads them: SIGHUP re-reads it, and switchd --config can
// start from it, whatever the working folder. (With a relative --data it
// named them relative to the working folder, and SIGHUP looked for
// dienbao-dev/dienbao-dev/directory.toml.)
func TestDevConfigLoadsFromItsFolder(t *testing.T) {
	root := t.TempDir()
	t.Chdir(root)
	if _, err := DevSite("dev", "127.0.0.1:4433"); err != nil {
		t.Fatal(err)
	}
	for _, from := range []string{root, t.TempDir()} {
		t.Chdir(from)
		c, err := LoadConfig(filepath.Join(root, "dev", "switchd.toml"))
		if err != nil {
			t.Fatal(err)
		}
		for name, p := range map[string]string{"directory": c.Directory, "ca": c.CA, "cert": c.Cert, "key": c.Key, "key_file": c.KeyFile, "crl": c.CRL} {
			if _, err := os.Stat(p); err != nil {
				t.Errorf("from %s: %s = %s: %v", from, name, p, err)
			}
		}
		if want := filepath.Join(root, "dev", "data"); c.Data != want {
			t.Errorf("from %s: data = %s, want %s", from, c.Data, want)
		}
	}
}
