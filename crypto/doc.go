// Package crypto owns dienbao's secrets at rest: sealing stored records,
// the keyring of data-encryption keys, and the key-encryption key that
// protects them.
//
// Sealing. Every record the store keeps is sealed with XChaCha20-Poly1305
// (golang.org/x/crypto) under a data-encryption key (DEK). The associated
// data is the record's storage key and the DEK's ID, so a record that is
// altered, moved to another storage key, or relabelled with another key ID
// fails to open with an integrity error. A sealed record is
//
//	version (1 byte, 1) | key ID (4 bytes, big-endian) | nonce (24) | ciphertext and tag (len+16)
//
// Nonces are random: 192 bits make collisions negligible without any
// counter to keep across crashes.
//
// Key hierarchy. DEKs and the index key (with which the store turns agency
// addresses and references into opaque tags inside its storage keys) are
// random 256-bit keys, kept in the keyring file wrapped (sealed) by the
// key-encryption key (KEK). The KEK is never written to the data folder. It
// comes from one of:
//
//   - a passphrase, through Argon2id with the parameters of RFC 9106's
//     second recommended option: 3 passes, 64 MiB of memory, 4 lanes, a
//     16-byte random salt (stored in the keyring), 32-byte output;
//   - a key file holding 32 random bytes as 64 hex characters, kept outside
//     the data folder (on removable media, a separate volume, or a secrets
//     manager's mount).
//
// A wrong passphrase or key file fails to unwrap the keyring's check value
// and the keyring is not opened; nothing under the data folder is touched.
// Changing the passphrase re-wraps the keys only. Rotating the DEK adds a
// new current key at once; records sealed under older keys still open and
// are re-sealed in the background by the store, after which the old key is
// dropped from the keyring.
package crypto
