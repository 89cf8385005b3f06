package main

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/fxamacker/cbor/v2"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// The README's end-to-end walk-through: a SECRET telegram sealed and
// signed by tg send, opened and verified by tg inbox, checked offline by
// tg verify from the stored copy and from tg export-proof's proof; an
// altered proof is refused; and a verifier written here from the
// standard library alone (crypto/hpke, crypto/ed25519, crypto/ecdsa,
// AES-GCM) and golang.org/x/mod/sumdb accepts the proof.
func TestEndToEndWalkThrough(t *testing.T) {
	site := daemontest.Start(t)
	hn, na := site.IDDir("HN.UBND"), site.IDDir("NA.TU")
	const text = "Phương án sơ tán khẩn cấp vùng hạ lưu"
	r := tg(t, "", "--id", hn, "send", "--to", "NA.TU", "--prec", "FLASH", "--class", "SECRET", "--subject", "Sơ tán", "--ref", "HN-E2E-1", text)
	if r.code != 0 || strings.Contains(r.stderr, "UNSEALED") {
		t.Fatalf("send: %d %s", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	r = tg(t, "", "--id", na, "--json", "inbox")
	if r.code != 0 {
		t.Fatalf("inbox: %d %s", r.code, r.stderr)
	}
	var m client.Message
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil || m.ID.String() != id || !m.Sealed || m.Signed == nil || string(m.Body) != text {
		t.Fatalf("inbox: %s %v", r.stdout, err)
	}
	stored := filepath.Join(t.TempDir(), "stored.json")
	if err := os.WriteFile(stored, []byte(r.stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	if r = tg(t, "", "--id", na, "verify", stored); r.code != 0 || !strings.Contains(r.stdout, "signed by HN.UBND") {
		t.Fatalf("verify of the stored telegram: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// Several stored telegrams, as tg inbox --stored --json prints them:
	// each is checked, and a bad one among them fails the file.
	r = tg(t, "", "--id", hn, "send", "--to", "NA.TU", "--class", "SECRET", "thứ hai")
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	if r = tg(t, "", "--id", na, "inbox"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	r = tg(t, "", "--id", na, "--json", "inbox", "--stored")
	all := filepath.Join(t.TempDir(), "all.json")
	os.WriteFile(all, []byte(r.stdout), 0o644)
	if r = tg(t, "", "--id", na, "verify", all); r.code != 0 || strings.Count(r.stdout, "signed by HN.UBND") != 2 {
		t.Fatalf("verify of two stored telegrams: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// The stored copy's body or subject changed: refused.
	for _, alter := range []func(m *client.Message){
		func(m *client.Message) { m.Body = []byte("Phương án khác") },
		func(m *client.Message) { m.Subject = "Khác" },
	} {
		m2 := m
		alter(&m2)
		b, _ := json.Marshal(m2)
		bad := filepath.Join(t.TempDir(), "bad.json")
		os.WriteFile(bad, b, 0o644)
		if r = tg(t, "", "--id", na, "verify", bad); r.code == 0 {
			t.Fatalf("an altered stored telegram verified: %s", r.stdout)
		}
	}
	proofFile := filepath.Join(t.TempDir(), "proof.json")
	if r = tg(t, "", "--id", na, "export-proof", id, "--out", proofFile); r.code != 0 {
		t.Fatalf("export-proof: %d %s", r.code, r.stderr)
	}
	// Checked with no identity and no switch.
	if r = tg(t, "", "--json", "verify", proofFile); r.code != 0 {
		t.Fatalf("verify of the proof: %d %s", r.code, r.stderr)
	}
	var vr verifyResult
	if err := json.Unmarshal([]byte(r.stdout), &vr); err != nil || vr.Signature != "valid" || vr.Filed == nil || vr.Delivered == nil || vr.Addressee != "NA.TU" {
		t.Fatalf("verify: %s %v", r.stdout, err)
	}
	data, err := os.ReadFile(proofFile)
	if err != nil {
		t.Fatal(err)
	}
	independentVerify(t, data, na, text)
	// Altered: another content key, another addressee, a raised precedence.
	for _, alter := range []func(p map[string]any){
		func(p map[string]any) {
			p["evidence"].(map[string]any)["content_key"] = base64.StdEncoding.EncodeToString(make([]byte, 32))
		},
		func(p map[string]any) { p["addressee"] = "NA.UBND" },
		func(p map[string]any) { p["header"].(map[string]any)["precedence"] = "IMMEDIATE" },
	} {
		var p map[string]any
		if err := json.Unmarshal(data, &p); err != nil {
			t.Fatal(err)
		}
		alter(p)
		b, _ := json.Marshal(p)
		bad := filepath.Join(t.TempDir(), "bad.json")
		os.WriteFile(bad, b, 0o644)
		if r = tg(t, "", "verify", bad); r.code == 0 {
			t.Fatalf("an altered proof verified: %s", r.stdout)
		}
	}
}

// independentVerify checks a proof with the standard library and
// golang.org/x/mod/sumdb only, not dienbao's code: the CA's signature on
// the sender's key, the sender's signature on the header, the content
// under the content key, the addressee's own copy of the content key
// (HPKE, with the agency's private key from idDir), and the switch's
// signed audit log holding the filing (with this envelope) and the
// delivery.
func independentVerify(t *testing.T, proof []byte, idDir, wantBody string) {
	t.Helper()
	var p struct {
		Addressee string `json:"addressee"`
		Header    struct {
			ID   string   `json:"id"`
			From string   `json:"from"`
			To   []string `json:"to"`
		} `json:"header"`
		Evidence struct {
			Envelope   []byte `json:"envelope"`
			ContentKey []byte `json:"content_key"`
			SenderKey  []byte `json:"sender_key"`
		} `json:"evidence"`
		CA    string `json:"ca"`
		Audit struct {
			ID          string `json:"id"`
			Checkpoint  string `json:"checkpoint"`
			VerifierKey string `json:"verifier_key"`
			Entries     []struct {
				Index uint64   `json:"index"`
				Leaf  []byte   `json:"leaf"`
				Proof [][]byte `json:"proof"`
			} `json:"entries"`
		} `json:"audit"`
	}
	if err := json.Unmarshal(proof, &p); err != nil {
		t.Fatal(err)
	}
	ev := p.Evidence
	type signed struct {
		Body []byte `cbor:"1,keyasint"`
		Sig  []byte `cbor:"2,keyasint"`
	}
	// 1. The CA certified the sender's key.
	block, _ := pem.Decode([]byte(p.CA))
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	var kc signed
	if err := cbor.Unmarshal(ev.SenderKey, &kc); err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256(append([]byte("dienbao agency key v1\x00"), kc.Body...))
	if !ecdsa.VerifyASN1(ca.PublicKey.(*ecdsa.PublicKey), d[:], kc.Sig) {
		t.Fatal("independent: the CA did not sign the sender's key")
	}
	var key map[int]any
	if err := cbor.Unmarshal(kc.Body, &key); err != nil {
		t.Fatal(err)
	}
	if key[2] != p.Header.From {
		t.Fatalf("independent: the key is %v's, the sender %s", key[2], p.Header.From)
	}
	// 2. The sender signed the header.
	env, ok := bytes.CutPrefix(ev.Envelope, []byte("DBE2E1\n"))
	if !ok {
		t.Fatal("independent: not an envelope")
	}
	var e struct {
		Header []byte `cbor:"1,keyasint"`
		Sig    []byte `cbor:"2,keyasint"`
		Keys   []struct {
			Agency string `cbor:"1,keyasint"`
			Key    string `cbor:"2,keyasint"`
			Sealed []byte `cbor:"3,keyasint"`
		} `cbor:"3,keyasint"`
		Nonce  []byte `cbor:"4,keyasint"`
		Sealed []byte `cbor:"5,keyasint"`
	}
	if err := cbor.Unmarshal(env, &e); err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(ed25519.PublicKey(key[7].([]byte)), append([]byte("dienbao telegram v1\x00"), e.Header...), e.Sig) {
		t.Fatal("independent: the signature does not verify")
	}
	var h map[int]any
	if err := cbor.Unmarshal(e.Header, &h); err != nil {
		t.Fatal(err)
	}
	if h[2] != p.Header.From || fmt.Sprint(h[3]) != fmt.Sprint(p.Header.To) || h[12] != key[3] {
		t.Fatalf("independent: the signed header %v does not match %+v", h, p.Header)
	}
	hd := sha256.Sum256(e.Header)
	// 3. The content key opens the content the sender signed.
	block2, _ := aes.NewCipher(ev.ContentKey)
	gcm, _ := cipher.NewGCM(block2)
	content, err := gcm.Open(nil, e.Nonce, e.Sealed, hd[:])
	if err != nil {
		t.Fatal("independent: the content key does not open the content")
	}
	if cd := sha256.Sum256(content); !bytes.Equal(cd[:], h[13].([]byte)) {
		t.Fatal("independent: the content is not what was signed")
	}
	var c map[int]any
	if err := cbor.Unmarshal(content, &c); err != nil || string(c[2].([]byte)) != wantBody {
		t.Fatalf("independent: content %v, %v", c, err)
	}
	// 4. The addressee's own copy of the content key, with its private key.
	kf, err := filepath.Glob(filepath.Join(idDir, "agency-keys", "*.key"))
	if err != nil || len(kf) == 0 {
		t.Fatal("no agency key file")
	}
	kb, _ := os.ReadFile(kf[0])
	kblock, _ := pem.Decode(kb)
	var priv map[int]any
	if err := cbor.Unmarshal(kblock.Bytes, &priv); err != nil {
		t.Fatal(err)
	}
	hp, err := hpke.MLKEM768X25519().NewPrivateKey(priv[3].([]byte))
	if err != nil {
		t.Fatal(err)
	}
	opened := false
	for _, w := range e.Keys {
		if w.Agency != p.Addressee {
			continue
		}
		info := append([]byte("dienbao e2e key v1\x00"+w.Agency+"\x00"), hd[:]...)
		ck, err := hpke.Open(hp, hpke.HKDFSHA256(), hpke.AES256GCM(), info, w.Sealed)
		if err != nil || !bytes.Equal(ck, ev.ContentKey) {
			t.Fatalf("independent: the addressee's wrap gives %x, %v", ck, err)
		}
		opened = true
	}
	if !opened {
		t.Fatal("independent: no wrap for the addressee")
	}
	// 5. The switch's signed log holds the filing of this envelope and the
	// delivery to the addressee.
	v, err := note.NewVerifier(p.Audit.VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open([]byte(p.Audit.Checkpoint), note.VerifierList(v))
	if err != nil {
		t.Fatalf("independent: checkpoint: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	rootB, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil {
		t.Fatal(err)
	}
	var root tlog.Hash
	copy(root[:], rootB)
	filed, delivered := false, false
	for _, en := range p.Audit.Entries {
		var rp tlog.RecordProof
		for _, b := range en.Proof {
			var hh tlog.Hash
			copy(hh[:], b)
			rp = append(rp, hh)
		}
		if err := tlog.CheckRecord(rp, size, root, int64(en.Index), tlog.RecordHash(en.Leaf)); err != nil {
			t.Fatalf("independent: entry %d is not in the signed log: %v", en.Index, err)
		}
		var l struct{ Event, ID, From, To, Reason string }
		if err := json.Unmarshal(en.Leaf, &l); err != nil || l.ID != p.Header.ID {
			t.Fatalf("independent: leaf %s", en.Leaf)
		}
		filed = filed || l.Event == "filed" && l.Reason == "sealed "+hex.EncodeToString(hd[:])
		delivered = delivered || l.Event == "delivered" && l.To == p.Addressee
	}
	if !filed || !delivered {
		t.Fatalf("independent: filed %v, delivered %v", filed, delivered)
	}
}

// Rotation mid-flow: NA.TU makes a new key (tg agency-keys new), the CA
// certifies it (tg certs sign-keys) and it is published. A telegram
// queued before stays readable by a terminal that keeps the old key; a
// sender that still seals to the old key (its view of the keys is a
// minute old) reaches a terminal that has only the new key, which cannot
// open it: the sender is told NOT_DELIVERED, unreadable. New filings seal
// to the new key.
func TestAgencyKeyRotationMidFlow(t *testing.T) {
	site := daemontest.Start(t)
	na := site.IDDir("NA.TU")
	ctx := context.Background()
	sender := site.Dial("HN.UBND") // keeps its view of the published keys
	send := func(c *client.Client, text string) telegram.ID {
		res, err := c.Send(ctx, client.Telegram{To: []telegram.Address{"NA.TU"}, Classification: telegram.Secret, Body: []byte(text)})
		if err != nil || !res.Sealed {
			t.Fatalf("send: %+v %v", res, err)
		}
		return res.ID
	}
	before := send(sender, "trước")
	r := tg(t, "", "--id", na, "--json", "agency-keys", "new")
	var made map[string]string
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &made) != nil {
		t.Fatalf("agency-keys new: %d %s %s", r.code, r.stdout, r.stderr)
	}
	certFile := filepath.Join(site.Dir, daemon.DevKeysDir, "NA.TU-2.pem")
	if r = tg(t, "", "certs", "sign-keys", "--ca", filepath.Join(site.Dir, "ca"), made["request"], "--out", certFile); r.code != 0 {
		t.Fatalf("sign-keys: %s", r.stderr)
	}
	// Made, not yet published: NA.TU still signs with its published key.
	if res, err := dialID(t, na).Send(ctx, client.Telegram{To: []telegram.Address{"HN.UBND"}, Body: []byte("chưa công bố")}); err != nil || !res.Sealed {
		t.Fatalf("NA.TU sending while its new key waits for the CA: %+v %v", res, err)
	}
	if got := site.Receive("HN.UBND", client.ReceiveOptions{Inbox: true}); len(got.Telegrams) != 1 {
		t.Fatalf("HN.UBND got %d telegrams from NA.TU, want 1 (signed with the published key)", len(got.Telegrams))
	}
	site.ReloadDirectory()
	r = tg(t, "", "--id", na, "--json", "agency-keys", "list")
	if r.code != 0 || strings.Count(r.stdout, `"published":true`) != 2 || !strings.Contains(r.stdout, `"serial":"`+made["serial"]+`","agency":"NA.TU"`) {
		t.Fatalf("agency-keys list: %s %s", r.stdout, r.stderr)
	}
	stale := send(sender, "khóa cũ")                // sealed to the old key: the sender's view is fresh for a minute
	fresh := send(site.Dial("HN.UBND"), "khóa mới") // sealed to the new key
	// A second terminal of NA.TU that holds only the new key.
	second := filepath.Join(site.Dir, "ids", "NA.TU-new")
	if r = tg(t, "", "certs", "issue", "--ca", filepath.Join(site.Dir, "ca"), "--role", "terminal", "--name", "NA.TU terminal 2",
		"--agency", "NA.TU", "--clearance", "SECRET", "--switch", site.Server.Addr().String(), "--out", second); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if r = tg(t, "", "--id", second, "agency-keys", "import", filepath.Join(na, "agency-keys", made["serial"]+".key")); r.code != 0 {
		t.Fatal(r.stderr)
	}
	// The first terminal (both keys) takes what was queued before.
	old := site.Receive("NA.TU", client.ReceiveOptions{Inbox: true})
	if len(old.Telegrams) != 3 {
		t.Fatalf("NA.TU (old and new keys) got %d telegrams, want 3", len(old.Telegrams))
	}
	// Again, now to the second terminal only.
	stale2 := send(sender, "khóa cũ 2")
	fresh2 := send(site.Dial("HN.UBND"), "khóa mới 2")
	col := &daemontest.Collector{}
	c2ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := dialID(t, second).Receive(c2ctx, client.ReceiveOptions{Inbox: true}, col); err != nil {
		t.Fatal(err)
	}
	if len(col.Telegrams) != 1 || col.Telegrams[0].Header.ID != fresh2 {
		t.Fatalf("the new-key-only terminal took %d telegrams, want only %s", len(col.Telegrams), fresh2)
	}
	reports := site.Receive("HN.UBND", client.ReceiveOptions{Receipts: true})
	want := map[telegram.ID]string{before: "DELIVERED", stale: "DELIVERED", fresh: "DELIVERED", stale2: "NOT_DELIVERED unreadable", fresh2: "DELIVERED"}
	for _, rc := range reports.Receipts {
		if got := strings.TrimSpace(rc.Status.String() + " " + rc.Reason); want[rc.ID] != got {
			t.Fatalf("report on %s: %s, want %s", rc.ID, got, want[rc.ID])
		}
		delete(want, rc.ID)
	}
	if len(want) != 0 {
		t.Fatalf("no report on %v", want)
	}
}

func dialID(t *testing.T, dir string) *client.Client {
	t.Helper()
	c, err := dialDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
