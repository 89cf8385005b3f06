package crypto

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"slices"

	"github.com/dienbao/dienbao/switch/fault"
	"golang.org/x/crypto/chacha20poly1305"
)

const (
	sealVersion = 1
	headerLen   = 1 + 4 + chacha20poly1305.NonceSizeX
	// Overhead is how many bytes sealing adds to a record.
	Overhead = headerLen + chacha20poly1305.Overhead
)

var sealDomain = []byte("dienbao/seal/v1\x00")

// ErrIntegrity is the error for a record that fails to open: altered,
// moved to another storage key, or sealed under an unknown key.
var ErrIntegrity = fault.E("crypto", fault.Integrity, "a stored record failed its integrity check (altered, moved or sealed under an unknown key)")

func sealAD(recordKey []byte, keyID uint32) []byte {
	ad := make([]byte, 0, len(sealDomain)+len(recordKey)+4)
	ad = append(ad, sealDomain...)
	ad = append(ad, recordKey...)
	return binary.BigEndian.AppendUint32(ad, keyID)
}

// newAEAD builds the cipher for a 32-byte key.
func newAEAD(key []byte) cipher.AEAD {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		panic("crypto: bad key length") // keys are made here, always 32 bytes
	}
	return aead
}

// seal seals plaintext for recordKey under key keyID, appending to dst.
func seal(dst []byte, key []byte, keyID uint32, recordKey, plaintext []byte) []byte {
	return sealAEAD(dst, newAEAD(key), keyID, recordKey, plaintext)
}

func sealAEAD(dst []byte, aead cipher.AEAD, keyID uint32, recordKey, plaintext []byte) []byte {
	var nonce [chacha20poly1305.NonceSizeX]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		panic("crypto: no randomness: " + err.Error())
	}
	return sealNonce(dst, aead, keyID, nonce, recordKey, plaintext)
}

// sealNonce is the sealed record's layout (golden file:
// testdata/golden/sealed-record.hex): version, key ID, nonce, then the
// ciphertext and tag over the associated data of sealAD.
func sealNonce(dst []byte, aead cipher.AEAD, keyID uint32, nonce [chacha20poly1305.NonceSizeX]byte, recordKey, plaintext []byte) []byte {
	dst = slices.Grow(dst, Overhead+len(plaintext))
	dst = append(dst, sealVersion)
	dst = binary.BigEndian.AppendUint32(dst, keyID)
	dst = append(dst, nonce[:]...)
	return aead.Seal(dst, nonce[:], plaintext, sealAD(recordKey, keyID))
}

// KeyIDOf returns the ID of the key a sealed record claims, or false if it
// is not a sealed record.
func KeyIDOf(sealed []byte) (uint32, bool) {
	if len(sealed) < Overhead || sealed[0] != sealVersion {
		return 0, false
	}
	return binary.BigEndian.Uint32(sealed[1:5]), true
}

// open opens a sealed record with key, which must be the key its ID names.
func open(dst []byte, key []byte, recordKey, sealed []byte) ([]byte, error) {
	return openAEAD(dst, newAEAD(key), recordKey, sealed)
}

func openAEAD(dst []byte, aead cipher.AEAD, recordKey, sealed []byte) ([]byte, error) {
	id, ok := KeyIDOf(sealed)
	if !ok {
		return nil, ErrIntegrity
	}
	out, err := aead.Open(dst, sealed[5:headerLen], sealed[headerLen:], sealAD(recordKey, id))
	if err != nil {
		return nil, ErrIntegrity
	}
	return out, nil
}

// SealWithKey seals plaintext for recordKey under a single 32-byte key
// (key ID 0), for stores that are not the switch's: a terminal's inbox.
func SealWithKey(key, recordKey, plaintext []byte) []byte {
	return seal(nil, key, 0, recordKey, plaintext)
}

// OpenWithKey opens what SealWithKey sealed.
func OpenWithKey(key, recordKey, sealed []byte) ([]byte, error) {
	if id, ok := KeyIDOf(sealed); !ok || id != 0 {
		return nil, ErrIntegrity
	}
	return open(nil, key, recordKey, sealed)
}
