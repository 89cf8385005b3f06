package crypto

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/dienbao/dienbao/switch/fault"
)

func newRing(t testing.TB) (*Keyring, string, Secret) {
	t.Helper()
	dir := t.TempDir()
	s := Secret{KeyFile: filepath.Join(t.TempDir(), "master.key")}
	if err := NewKeyFile(s.KeyFile); err != nil {
		t.Fatal(err)
	}
	k, err := CreateKeyring(dir, s)
	if err != nil {
		t.Fatal(err)
	}
	return k, dir, s
}

func TestSealOpenAndTamper(t *testing.T) {
	k, _, _ := newRing(t)
	key, msg := []byte("h\x01\x02"), []byte("Mực nước sông Lam vượt báo động 3")
	sealed := k.Seal(nil, key, msg)
	if bytes.Contains(sealed, msg) || len(sealed) != len(msg)+Overhead {
		t.Fatalf("sealed record holds the plaintext or has the wrong length")
	}
	got, err := k.Open(nil, key, sealed)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("open: %q %v", got, err)
	}
	flip := func(i int) []byte { b := append([]byte(nil), sealed...); b[i] ^= 1; return b }
	relabel := append([]byte(nil), sealed...)
	binary.BigEndian.PutUint32(relabel[1:5], 99)
	cases := map[string]struct {
		key, rec []byte
	}{
		"altered ciphertext":   {key, flip(len(sealed) - 20)},
		"altered tag":          {key, flip(len(sealed) - 1)},
		"altered nonce":        {key, flip(10)},
		"moved to another key": {[]byte("h\x01\x03"), sealed},
		"relabelled key ID":    {key, relabel},
		"truncated":            {key, sealed[:Overhead-1]},
		"not a sealed record":  {key, msg},
	}
	for name, c := range cases {
		if _, err := k.Open(nil, c.key, c.rec); fault.KindOf(err) != fault.Integrity {
			t.Errorf("%s: %v, want an integrity error", name, err)
		}
	}
}

func TestWrongSecretTouchesNothing(t *testing.T) {
	_, dir, _ := newRing(t)
	before, _ := os.ReadFile(filepath.Join(dir, KeyringFile))
	other := filepath.Join(t.TempDir(), "other.key")
	NewKeyFile(other)
	if _, err := OpenKeyring(dir, Secret{KeyFile: other}); fault.KindOf(err) != fault.Permission {
		t.Fatalf("wrong key file: %v, want a permission error", err)
	}
	if _, err := OpenKeyring(dir, Secret{Passphrase: []byte("guess")}); fault.KindOf(err) != fault.Permission {
		t.Fatalf("passphrase for a key-file keyring: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, KeyringFile))
	if !bytes.Equal(before, after) {
		t.Fatal("a failed open changed the keyring")
	}
}

func TestPassphraseKeyring(t *testing.T) {
	dir := t.TempDir()
	k, err := CreateKeyring(dir, Secret{Passphrase: []byte("đúng mật khẩu")})
	if err != nil {
		t.Fatal(err)
	}
	sealed := k.Seal(nil, []byte("r"), []byte("x"))
	if _, err := OpenKeyring(dir, Secret{Passphrase: []byte("sai mật khẩu")}); fault.KindOf(err) != fault.Permission {
		t.Fatalf("wrong passphrase: %v", err)
	}
	k2, err := OpenKeyring(dir, Secret{Passphrase: []byte("đúng mật khẩu")})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k2.Open(nil, []byte("r"), sealed); err != nil || string(got) != "x" {
		t.Fatalf("reopened keyring cannot open: %v", err)
	}
	if !bytes.Equal(k.IndexKey(), k2.IndexKey()) || len(k.IndexKey()) != 32 {
		t.Fatal("the index key did not survive reopening")
	}
	// Nothing secret is in the file in clear.
	b, _ := os.ReadFile(filepath.Join(dir, KeyringFile))
	for _, secret := range [][]byte{k.IndexKey(), k.keys[1], []byte("đúng mật khẩu")} {
		if bytes.Contains(b, secret) {
			t.Fatal("the keyring file holds a secret in clear")
		}
	}
	if st, _ := os.Stat(filepath.Join(dir, KeyringFile)); st.Mode().Perm() != 0o600 {
		t.Errorf("keyring mode %v", st.Mode().Perm())
	}
}

func TestRotateRetireRewrap(t *testing.T) {
	k, dir, s := newRing(t)
	old := k.Seal(nil, []byte("a"), []byte("old"))
	id, err := k.Rotate()
	if err != nil || id != 2 || k.Current() != 2 {
		t.Fatalf("rotate: %d %v", id, err)
	}
	fresh := k.Seal(nil, []byte("b"), []byte("new"))
	if kid, _ := KeyIDOf(fresh); kid != 2 {
		t.Fatalf("new records use key %d, want 2", kid)
	}
	if _, err := k.Open(nil, []byte("a"), old); err != nil {
		t.Fatalf("a record under the old key no longer opens: %v", err)
	}
	if err := k.Retire(2); err == nil {
		t.Fatal("retired the current key")
	}
	if err := k.Retire(1); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Open(nil, []byte("a"), old); fault.KindOf(err) != fault.Integrity {
		t.Fatalf("a record under a retired key: %v", err)
	}
	// Re-wrap with a passphrase: the old key file no longer opens it, the
	// passphrase does, and the keys are the same.
	if err := k.Rewrap(Secret{Passphrase: []byte("mới")}); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenKeyring(dir, s); fault.KindOf(err) != fault.Permission {
		t.Fatalf("old key file after re-wrap: %v", err)
	}
	k2, err := OpenKeyring(dir, Secret{Passphrase: []byte("mới")})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k2.Open(nil, []byte("b"), fresh); err != nil || string(got) != "new" {
		t.Fatalf("after re-wrap: %v", err)
	}
	if ids := k2.IDs(); len(ids) != 1 || ids[0] != 2 {
		t.Fatalf("keys after reopen %v", ids)
	}
}

func TestKeyFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k")
	if err := NewKeyFile(p); err != nil {
		t.Fatal(err)
	}
	if err := NewKeyFile(p); err == nil {
		t.Fatal("overwrote a key file")
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v", st.Mode().Perm())
	}
	os.WriteFile(p+"bad", []byte("abcd\n"), 0o600)
	if _, err := ReadKeyFile(p + "bad"); fault.KindOf(err) != fault.Invalid {
		t.Fatalf("short key file: %v", err)
	}
}

func BenchmarkSeal1KiB(b *testing.B) {
	k, _, _ := newRing(b)
	msg, key := make([]byte, 1024), []byte("b0123456789abcdef\x00\x00\x00\x00")
	b.SetBytes(1024)
	var buf []byte
	for i := 0; i < b.N; i++ {
		buf = k.Seal(buf[:0], key, msg)
	}
}

func BenchmarkOpen1KiB(b *testing.B) {
	k, _, _ := newRing(b)
	key := []byte("b0123456789abcdef\x00\x00\x00\x00")
	sealed := k.Seal(nil, key, make([]byte, 1024))
	b.SetBytes(1024)
	var buf []byte
	for i := 0; i < b.N; i++ {
		var err error
		if buf, err = k.Open(buf[:0], key, sealed); err != nil {
			b.Fatal(err)
		}
	}
}
