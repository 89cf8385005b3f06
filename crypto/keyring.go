package crypto

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dienbao/dienbao/switch/fault"
	"github.com/google/renameio/v2"
	"golang.org/x/crypto/argon2"
)

// KeyringFile is the keyring's file name inside the data folder.
const KeyringFile = "keyring.json"

// Argon2id parameters (RFC 9106, second recommended option).
const (
	argonTime    = 3
	argonMemory  = 64 << 10 // KiB
	argonThreads = 4
)

// Secret is where the key-encryption key comes from: a passphrase or a
// key file. Exactly one is set.
type Secret struct {
	Passphrase []byte
	KeyFile    string
}

func (s Secret) check() error {
	if (len(s.Passphrase) == 0) == (s.KeyFile == "") {
		return fault.E("keyring", fault.Invalid, "give exactly one of a passphrase or a key file")
	}
	return nil
}

type kdfParams struct {
	Kind    string `json:"kind"` // "argon2id"
	Salt    []byte `json:"salt"`
	Time    uint32 `json:"time"`
	Memory  uint32 `json:"memory_kib"`
	Threads uint8  `json:"threads"`
}

type wrappedKey struct {
	ID      uint32    `json:"id"`
	Created time.Time `json:"created"`
	Wrapped []byte    `json:"wrapped"`
}

// keyringFile is the keyring as stored. Everything secret in it is wrapped
// by the KEK.
type keyringFile struct {
	Version int          `json:"version"`
	KDF     *kdfParams   `json:"kdf,omitempty"` // nil: the KEK is a key file
	Check   []byte       `json:"check"`         // a known value sealed by the KEK
	Index   []byte       `json:"index"`         // the key that makes storage keys opaque, wrapped
	Keys    []wrappedKey `json:"keys"`
	Current uint32       `json:"current"`
}

// Keyring holds the unwrapped keys in memory. It is safe for concurrent use.
type Keyring struct {
	mu      sync.RWMutex
	path    string
	kek     []byte
	kdf     *kdfParams
	index   []byte
	keys    map[uint32][]byte
	aeads   map[uint32]cipher.AEAD // one cipher per key, built once
	created map[uint32]time.Time
	current uint32
}

// aeadLocked returns the cipher of key id (nil if the keyring lacks it).
// Callers hold k.mu; the cache is rebuilt whenever the keys change.
func (k *Keyring) aeadLocked(id uint32) cipher.AEAD { return k.aeads[id] }

// rebuild makes the cipher cache match the keys. Callers hold k.mu
// exclusively.
func (k *Keyring) rebuild() {
	k.aeads = make(map[uint32]cipher.AEAD, len(k.keys))
	for id, key := range k.keys {
		k.aeads[id] = newAEAD(key)
	}
}

var checkValue = []byte("dienbao keyring v1")

func wrapAD(what string) []byte { return []byte("keyring/" + what) }

func deriveKEK(s Secret, kdf *kdfParams) ([]byte, error) {
	if len(s.Passphrase) > 0 {
		return argon2.IDKey(s.Passphrase, kdf.Salt, kdf.Time, kdf.Memory, kdf.Threads, 32), nil
	}
	return ReadKeyFile(s.KeyFile)
}

func randomKey() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic("crypto: no randomness: " + err.Error())
	}
	return k
}

// CreateKeyring makes a new keyring in dir, with a fresh index key and a
// first DEK, wrapped by the KEK from s. It refuses to replace one.
func CreateKeyring(dir string, s Secret) (*Keyring, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, KeyringFile)
	if _, err := os.Stat(path); err == nil {
		return nil, fault.Errorf("keyring", fault.Invalid, "%s already exists", path)
	}
	k := &Keyring{path: path, index: randomKey(), keys: map[uint32][]byte{1: randomKey()},
		created: map[uint32]time.Time{1: time.Now().UTC()}, current: 1}
	if len(s.Passphrase) > 0 {
		k.kdf = &kdfParams{Kind: "argon2id", Salt: randomKey()[:16], Time: argonTime, Memory: argonMemory, Threads: argonThreads}
	}
	var err error
	if k.kek, err = deriveKEK(s, k.kdf); err != nil {
		return nil, err
	}
	k.rebuild()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fault.E("keyring", fault.Internal, "cannot create "+dir, err)
	}
	return k, k.save()
}

// OpenKeyring opens the keyring in dir with the KEK from s. A wrong
// passphrase or key file is a Permission error and changes nothing.
func OpenKeyring(dir string, s Secret) (*Keyring, error) {
	const op = "keyring"
	if err := s.check(); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, KeyringFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fault.Errorf(op, fault.NotExist, "no keyring in %s", dir)
	} else if err != nil {
		return nil, fault.E(op, fault.Internal, "cannot read "+path, err)
	}
	var f keyringFile
	if err := json.Unmarshal(b, &f); err != nil || f.Version != 1 {
		return nil, fault.Errorf(op, fault.Integrity, "%s is not a dienbao keyring", path)
	}
	switch {
	case f.KDF == nil && s.KeyFile == "":
		return nil, fault.E(op, fault.Permission, "this keyring is protected by a key file, not a passphrase")
	case f.KDF != nil && len(s.Passphrase) == 0:
		return nil, fault.E(op, fault.Permission, "this keyring is protected by a passphrase, not a key file")
	}
	k := &Keyring{path: path, kdf: f.KDF, keys: map[uint32][]byte{}, created: map[uint32]time.Time{}, current: f.Current}
	if k.kek, err = deriveKEK(s, f.KDF); err != nil {
		return nil, err
	}
	if got, err := open(nil, k.kek, wrapAD("check"), f.Check); err != nil || string(got) != string(checkValue) {
		return nil, fault.E(op, fault.Permission, "wrong passphrase or key file: the keyring cannot be opened")
	}
	if k.index, err = open(nil, k.kek, wrapAD("index"), f.Index); err != nil {
		return nil, fault.Errorf(op, fault.Integrity, "%s: the index key does not unwrap", path)
	}
	for _, w := range f.Keys {
		key, err := open(nil, k.kek, wrapAD(fmt.Sprintf("dek/%d", w.ID)), w.Wrapped)
		if err != nil {
			return nil, fault.Errorf(op, fault.Integrity, "%s: data key %d does not unwrap", path, w.ID)
		}
		k.keys[w.ID], k.created[w.ID] = key, w.Created
	}
	if _, ok := k.keys[k.current]; !ok {
		return nil, fault.Errorf(op, fault.Integrity, "%s: the current data key %d is missing", path, k.current)
	}
	k.rebuild()
	return k, nil
}

// save writes the keyring atomically (temporary file, fsync, rename, fsync
// of the folder). Callers hold k.mu or own k exclusively.
func (k *Keyring) save() error {
	f := keyringFile{Version: 1, KDF: k.kdf, Current: k.current,
		Check: seal(nil, k.kek, 0, wrapAD("check"), checkValue),
		Index: seal(nil, k.kek, 0, wrapAD("index"), k.index)}
	for _, id := range k.idsLocked() {
		f.Keys = append(f.Keys, wrappedKey{ID: id, Created: k.created[id],
			Wrapped: seal(nil, k.kek, 0, wrapAD(fmt.Sprintf("dek/%d", id)), k.keys[id])})
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := renameio.WriteFile(k.path, append(b, '\n'), 0o600); err != nil {
		return fault.E("keyring", fault.Internal, "cannot write "+k.path, err)
	}
	d, err := os.Open(filepath.Dir(k.path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (k *Keyring) idsLocked() []uint32 {
	ids := make([]uint32, 0, len(k.keys))
	for id := range k.keys {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// Seal seals plaintext for storage under recordKey with the current DEK,
// appending to dst.
func (k *Keyring) Seal(dst, recordKey, plaintext []byte) []byte {
	k.mu.RLock()
	id, aead := k.current, k.aeadLocked(k.current)
	k.mu.RUnlock()
	return sealAEAD(dst, aead, id, recordKey, plaintext)
}

// Open opens a record sealed under recordKey, appending the plaintext to
// dst. A record altered, moved or sealed under an unknown key is an
// integrity error.
func (k *Keyring) Open(dst, recordKey, sealed []byte) ([]byte, error) {
	id, ok := KeyIDOf(sealed)
	if !ok {
		return nil, ErrIntegrity
	}
	k.mu.RLock()
	aead := k.aeadLocked(id)
	k.mu.RUnlock()
	if aead == nil {
		return nil, ErrIntegrity
	}
	return openAEAD(dst, aead, recordKey, sealed)
}

// Current is the ID of the DEK new records are sealed with.
func (k *Keyring) Current() uint32 {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.current
}

// IDs lists the DEKs the keyring holds, oldest first.
func (k *Keyring) IDs() []uint32 {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.idsLocked()
}

// IndexKey is the 32-byte key the store uses to turn agency addresses and
// sender references into opaque tags inside storage keys. It never
// rotates: the tags are how records are found.
func (k *Keyring) IndexKey() []byte {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return append([]byte(nil), k.index...)
}

// Rotate adds a new DEK and makes it current, durably, and returns its ID.
// Older DEKs stay until Retire: records sealed with them still open.
func (k *Keyring) Rotate() (uint32, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	id := k.idsLocked()[len(k.keys)-1] + 1
	k.keys[id], k.created[id] = randomKey(), time.Now().UTC()
	prev := k.current
	k.current = id
	if err := k.save(); err != nil {
		delete(k.keys, id)
		delete(k.created, id)
		k.current = prev
		return 0, err
	}
	k.rebuild()
	return id, nil
}

// Retire drops a DEK that no record uses any more. The current one cannot
// be retired.
func (k *Keyring) Retire(id uint32) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if id == k.current {
		return fault.Errorf("keyring", fault.Invalid, "data key %d is the current one", id)
	}
	key, ok := k.keys[id]
	if !ok {
		return nil
	}
	delete(k.keys, id)
	if err := k.save(); err != nil {
		k.keys[id] = key
		return err
	}
	k.rebuild()
	return nil
}

// Rewrap protects the same keys with a new secret (a new passphrase, or a
// key file): only the keyring file changes.
func (k *Keyring) Rewrap(s Secret) error {
	if err := s.check(); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	var kdf *kdfParams
	if len(s.Passphrase) > 0 {
		kdf = &kdfParams{Kind: "argon2id", Salt: randomKey()[:16], Time: argonTime, Memory: argonMemory, Threads: argonThreads}
	}
	kek, err := deriveKEK(s, kdf)
	if err != nil {
		return err
	}
	oldKEK, oldKDF := k.kek, k.kdf
	k.kek, k.kdf = kek, kdf
	if err := k.save(); err != nil {
		k.kek, k.kdf = oldKEK, oldKDF
		return err
	}
	return nil
}

// NewKeyFile writes a new random key file (64 hex characters, mode 0600),
// refusing to overwrite one.
func NewKeyFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fault.E("keyfile", fault.Invalid, "refusing to overwrite or cannot create "+path, err)
	}
	if _, err := f.WriteString(hex.EncodeToString(randomKey()) + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadKeyFile reads a key file: 64 hex characters.
func ReadKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fault.E("keyfile", fault.Invalid, "cannot read the key file "+path, err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return nil, fault.Errorf("keyfile", fault.Invalid, "%s must hold 64 hex characters (a 256-bit key)", path)
	}
	return key, nil
}
