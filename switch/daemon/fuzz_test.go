package daemon

import (
	"testing"
)

// FuzzParseConfig: no config file, however malformed, panics the parser;
// what it accepts has the settings it promises (a data folder, a listen
// address, a log format).
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("listen = \"0.0.0.0:4433\"\ndata = \"/var/lib/dienbao\"\nca = \"ca.pem\"\ncert = \"c.pem\"\nkey = \"k.pem\"\n" +
		"directory = \"d.toml\"\nkey_file = \"/k\"\n[limits]\nmax_body = 10\nfiling_rate = 5\n[audit]\norigin = \"dienbao/x\"\n"))
	f.Add([]byte("[custody]\nack_timeout = \"-1s\"\n"))
	f.Add([]byte("listen = 5\n"))
	f.Add([]byte("[[agency]]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data, "/etc/dienbao/switchd.toml")
		if err != nil {
			return
		}
		if c.Data == "" || c.Listen == "" || (c.Log != "json" && c.Log != "console") {
			t.Fatalf("accepted a config without its settings: %+v", c)
		}
	})
}
