package daemon

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/server"
	"github.com/dienbao/dienbao/switch/telegram"
)

// The config switchd --dev writes shows the values the switch runs with,
// not zeros, and reads back as the same settings.
func TestDevConfigShowsDefaults(t *testing.T) {
	dir := t.TempDir()
	if _, err := DevSite(dir, "127.0.0.1:4433"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "switchd.toml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	zero := regexp.MustCompile(`(?m)^(\w+) = (0|'0s'|'')$`)
	for _, m := range zero.FindAllStringSubmatch(string(b), -1) {
		if m[1] != "procs" { // 0 is its documented value: twice the CPUs
			t.Errorf("%s is written as %s, not its real value", m[1], m[2])
		}
	}
	for _, want := range []string{"ack_timeout = '2m0s'", "max_body = 16777216", "window = 32", "flash = '10m0s'", "retention = '720h0m0s'", "grace = '72h0m0s'"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the dev config lacks %q", want)
		}
	}
	if strings.Contains(string(b), "[group]") || strings.Contains(string(b), "[network]") {
		t.Error("the dev config has empty [group] or [network] tables")
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	d := server.DefaultConfig()
	if time.Duration(cfg.Custody.AckTimeout) != d.AckTimeout || cfg.Limits.MaxSessions != d.MaxSessions || time.Duration(cfg.Speed.Routine) != d.SpeedTargets[telegram.Routine] {
		t.Fatalf("read back: %+v", cfg.Custody)
	}
	if again := withDefaultsShown(*cfg); again.Limits != cfg.Limits || again.Custody != cfg.Custody {
		t.Fatal("showing the defaults of a config that shows them changed it")
	}
}
