package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
)

// Attachments round trip through a real switch, sealed end to end: the
// text and two files (one binary, one with a Vietnamese name) go out with
// tg send --attach; tg inbox prints the text, lists each file with its
// type, size and a checked SHA-256, and saves it byte for byte under
// attachments/ID/; --json says the same. Over the size limit, send
// refuses before dialling.
func TestAttachmentsRoundTrip(t *testing.T) {
	site := daemontest.Start(t)
	dir := t.TempDir()
	bin := make([]byte, 300_000)
	rand.Read(bin)
	files := map[string][]byte{
		"scan.bin":             bin,
		"Báo cáo tháng 11.txt": []byte("Mực nước sông Lam: 5,2 m\n"),
	}
	var args []string
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--attach", p)
	}
	r := tg(t, "", append([]string{"--id", site.IDDir("HN.UBND"), "--json", "send", "--to", "NA.TU", "--class", "SECRET",
		"--subject", "Báo cáo", "Xem tệp đính kèm."}, args...)...)
	if r.code != 0 {
		t.Fatalf("send --attach: %d %s", r.code, r.stderr)
	}
	sent := jsonLines(t, r.stdout)[0]
	if sent["sealed"] != true {
		t.Fatalf("not sealed: %s", r.stdout)
	}
	id := sent["id"].(string)
	na := site.IDDir("NA.TU")
	r = tg(t, "", "--id", na, "inbox")
	if r.code != 0 {
		t.Fatalf("inbox: %d %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "Subject: Báo cáo\n\nXem tệp đính kèm.\nAttached: ") || strings.Contains(r.stdout, "MIME-Version") {
		t.Fatalf("inbox printed:\n%s\n%s", r.stdout, r.stderr)
	}
	for name, data := range files {
		saved := filepath.Join(na, "attachments", id, name)
		got, err := os.ReadFile(saved)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: %d bytes saved, %v; want the %d sent", saved, len(got), err, len(data))
		}
		fi, _ := os.Stat(saved)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %o, want 0600", saved, fi.Mode().Perm())
		}
		if !strings.Contains(r.stdout, "Attached: "+name+" (") || !strings.Contains(r.stdout, "sha-256 ok)\n          saved to "+saved) {
			t.Errorf("inbox does not list %s as saved and checked:\n%s", name, r.stdout)
		}
	}
	r = tg(t, "", "--id", na, "--json", "inbox", "--stored")
	m := jsonLines(t, r.stdout)
	if r.code != 0 || len(m) != 1 || m[0]["text"] != "Xem tệp đính kèm." {
		t.Fatalf("inbox --stored --json: %d %s", r.code, r.stdout)
	}
	atts := m[0]["attachments"].([]any)
	if len(atts) != 2 {
		t.Fatalf("%d attachments in JSON, want 2", len(atts))
	}
	for _, a := range atts {
		a := a.(map[string]any)
		data := files[a["name"].(string)]
		sum := sha256.Sum256(data)
		if a["digest_ok"] != true || a["sha256"] != hex.EncodeToString(sum[:]) || a["size"].(float64) != float64(len(data)) || a["saved"] == "" {
			t.Errorf("attachment in JSON: %v", a)
		}
	}
	if m := jsonLines(t, r.stdout)[0]; m["attachments"].([]any)[0].(map[string]any)["type"] == "" {
		t.Error("no media type")
	}

	big := filepath.Join(dir, "big.bin")
	os.WriteFile(big, make([]byte, 17<<20), 0o644)
	if r := tg(t, "", "--id", site.IDDir("HN.UBND"), "send", "--to", "NA.UBND", "--attach", big, "text"); r.code != exitTooLarge {
		t.Fatalf("a 17 MiB attachment: exit %d %s", r.code, r.stderr)
	}
}

// A body made by ComposeBody splits back into the same text and files; a
// file altered in transit fails its digest; a body that is not a MIME
// message is all text, even one that mentions MIME.
func TestComposeAndSplitBody(t *testing.T) {
	atts := []client.Attachment{{Name: "../../etc/passwd", Data: []byte("x")}, {Name: "a\u202eexe.txt", Data: []byte("y")}}
	body, err := client.ComposeBody([]byte("text"), atts)
	if err != nil {
		t.Fatal(err)
	}
	text, got, err := client.SplitBody(body)
	if err != nil || string(text) != "text" || len(got) != 2 || got[0].Name != "passwd" || got[1].Name != "aexe.txt" || !got[0].DigestOK {
		t.Fatalf("split: %q %+v %v", text, got, err)
	}
	altered := bytes.Replace(body, []byte("\r\n\r\nx\r\n"), []byte("\r\n\r\nz\r\n"), 1)
	if _, got, _ := client.SplitBody(altered); got[0].DigestOK {
		t.Fatal("an altered attachment passed its digest")
	}
	plain := []byte("MIME-Version: 1.0 is what an e-mail says")
	if text, got, err := client.SplitBody(plain); err != nil || !bytes.Equal(text, plain) || got != nil {
		t.Fatalf("a text body: %q %v %v", text, got, err)
	}
	if _, err := client.ComposeBody(nil, []client.Attachment{{Name: "a"}, {Name: "dir/a"}}); err == nil {
		t.Fatal("two attachments of one name were accepted")
	}
}
