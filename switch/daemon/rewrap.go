package daemon

import (
	"errors"
	"os"
	"strings"
	"syscall"

	"github.com/dienbao/dienbao/crypto"
	"github.com/dienbao/dienbao/switch/fault"
)

// NewSecret reads the secret a keyring is re-wrapped to: a new key file, a
// new passphrase file, or DIENBAO_NEW_PASSPHRASE.
func NewSecret(keyFile, passphraseFile string) (crypto.Secret, error) {
	env := os.Getenv("DIENBAO_NEW_PASSPHRASE")
	switch {
	case keyFile != "" && passphraseFile == "" && env == "":
		return crypto.Secret{KeyFile: keyFile}, nil
	case keyFile == "" && passphraseFile != "" && env == "":
		b, err := os.ReadFile(passphraseFile)
		if err != nil {
			return crypto.Secret{}, fault.E("rewrap", fault.Invalid, "cannot read the new passphrase file", err)
		}
		pass := strings.TrimRight(string(b), "\r\n")
		if pass == "" {
			return crypto.Secret{}, fault.E("rewrap", fault.Invalid, "the new passphrase file is empty")
		}
		return crypto.Secret{Passphrase: []byte(pass)}, nil
	case keyFile == "" && passphraseFile == "" && env != "":
		return crypto.Secret{Passphrase: []byte(env)}, nil
	}
	return crypto.Secret{}, fault.E("rewrap", fault.Invalid,
		"give exactly one of --new-key-file, --new-passphrase-file or DIENBAO_NEW_PASSPHRASE")
}

// Rewrap protects the keyring in cfg's data folder with a new secret: only
// the keyring file changes, no record is re-encrypted. The switch must be
// stopped (a running one would write the keyring back with the old
// wrapping at its next rotation); Rewrap refuses while the store is in use.
func Rewrap(cfg *Config, to crypto.Secret) error {
	const op = "rewrap"
	if err := checkNotRunning(StoreDir(cfg)); err != nil {
		return err
	}
	ring, err := OpenKeyring(cfg)
	if err != nil {
		return err
	}
	if to.KeyFile != "" && inside(cfg.Data, to.KeyFile) {
		return fault.Errorf(op, fault.Invalid, "%s is inside the data folder: keep the key-encryption key elsewhere", to.KeyFile)
	}
	return ring.Rewrap(to)
}

// checkNotRunning takes, and releases, the lock Badger holds on the store
// folder while a switch runs.
func checkNotRunning(dir string) error {
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fault.E("rewrap", fault.Internal, "cannot open "+dir, err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fault.E("rewrap", fault.Unavailable, "the switch is running on "+dir+": stop it first")
	}
	return syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}
