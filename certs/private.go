package certs

import (
	"fmt"
	"os"
)

// CheckPrivate refuses a file holding a secret (a private key, a key file,
// a passphrase file) that the group or others may read or write, as ssh
// does: such a key must be taken as known. The message says how to mend it.
func CheckPrivate(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return fmt.Errorf("%s holds a secret but is open to group or others (mode %04o): chmod 600 %s (and treat the secret as possibly read)", path, m, path)
	}
	return nil
}
