package certs

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"strings"

	"github.com/dienbao/dienbao/switch/fault"
	"github.com/youmark/pkcs8"
)

// Private keys at rest. A key file is PKCS#8 PEM: "PRIVATE KEY" in the
// clear (mode 0600), or "ENCRYPTED PRIVATE KEY" under a passphrase
// (PBES2: PBKDF2-HMAC-SHA256, 600,000 iterations, AES-256-CBC, as
// OpenSSL 3 writes with `openssl pkcs8 -topk8 -v2 aes-256-cbc`, and reads
// back with `openssl pkey`), through github.com/youmark/pkcs8.

// Passphrase is asked for the passphrase of the encrypted key file at
// path.
type Passphrase func(path string) ([]byte, error)

// PassphraseEnv names the variable holding the path of a file whose first
// line is the passphrase of encrypted key files (tg's identity folder
// keys, a CA's key, a switch's key).
const PassphraseEnv = "DIENBAO_KEY_PASSPHRASE_FILE"

// DefaultPassphrase is what LoadFolder and LoadCA ask: the file
// PassphraseEnv names. tg replaces it with a prompt on a terminal.
var DefaultPassphrase Passphrase = PassphraseFromEnv

// ErrNoPassphrase says an encrypted key was met with no way to ask for its
// passphrase.
var ErrNoPassphrase = errors.New("the key is encrypted and no passphrase was given (set " + PassphraseEnv + " to a file holding it, or run on a terminal)")

// PassphraseFromEnv reads the passphrase from the file PassphraseEnv
// names.
func PassphraseFromEnv(string) ([]byte, error) {
	file := os.Getenv(PassphraseEnv)
	if file == "" {
		return nil, ErrNoPassphrase
	}
	return PassphraseFile(file)
}

// PassphraseFile reads a passphrase from the first line of file, which
// must be private (mode 0600 or 0400).
func PassphraseFile(file string) ([]byte, error) {
	if err := CheckPrivate(file); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) == 0 {
		return nil, fault.Errorf("certs.key", fault.Invalid, "%s holds no passphrase", file)
	}
	return line, nil
}

// keyOpts are the encryption parameters of an encrypted key file.
var keyOpts = &pkcs8.Opts{Cipher: pkcs8.AES256CBC,
	KDFOpts: pkcs8.PBKDF2Opts{SaltSize: 16, IterationCount: 600000, HMACHash: crypto.SHA256}}

// MarshalKeyEncrypted encodes k as PKCS#8 PEM, encrypted under passphrase
// (in the clear if passphrase is empty).
func MarshalKeyEncrypted(k crypto.Signer, passphrase []byte) ([]byte, error) {
	if len(passphrase) == 0 {
		return MarshalKey(k)
	}
	der, err := pkcs8.MarshalPrivateKey(k, passphrase, keyOpts)
	if err != nil {
		return nil, fault.E("certs.key", fault.Internal, "encrypt key", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der}), nil
}

// KeyEncrypted reports whether the key file's PEM is encrypted.
func KeyEncrypted(data []byte) bool {
	b, _ := pem.Decode(data)
	return b != nil && b.Type == "ENCRYPTED PRIVATE KEY"
}

// ParseKey reads a private key file's contents (path names it in errors
// and to pass), asking pass for the passphrase if it is encrypted.
func ParseKey(path string, data []byte, pass Passphrase) (crypto.Signer, error) {
	const op = "certs.key"
	if IsTokenURI(data) {
		k, err := ParseTokenURI(string(data))
		if err != nil {
			return nil, fault.E(op, fault.Invalid, path+": "+err.Error())
		}
		return k.Signer()
	}
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, fault.Errorf(op, fault.Invalid, "%s holds no PEM private key (nor a PKCS#11 URI)", path)
	}
	var key any
	var err error
	switch b.Type {
	case "ENCRYPTED PRIVATE KEY":
		if pass == nil {
			return nil, fault.E(op, fault.Invalid, path+": "+ErrNoPassphrase.Error())
		}
		var p []byte
		if p, err = pass(path); err != nil {
			return nil, fault.E(op, fault.Invalid, "no passphrase for "+path+": "+err.Error())
		}
		if key, _, err = pkcs8.ParsePrivateKey(b.Bytes, p); err != nil {
			return nil, fault.E(op, fault.Invalid, "wrong passphrase for "+path+" (or the file is damaged)")
		}
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		return nil, fault.Errorf(op, fault.Invalid, "%s holds a %s, not a private key", path, strings.ToLower(b.Type))
	}
	if err != nil {
		return nil, fault.E(op, fault.Invalid, path+" is not a readable private key", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fault.Errorf(op, fault.Invalid, "%s holds a key that cannot sign", path)
	}
	return signer, nil
}

// LoadKeyPair reads a certificate chain (PEM, leaf first) and its private
// key, plain, encrypted, or in a PKCS#11 token (token.go), and checks that
// they belong together.
func LoadKeyPair(certFile, keyFile string, pass Passphrase) (tls.Certificate, error) {
	const op = "certs.key"
	var pair tls.Certificate
	if err := CheckPrivate(keyFile); err != nil && !os.IsNotExist(err) {
		return pair, fault.E(op, fault.Invalid, err.Error())
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return pair, fault.E(op, fault.Invalid, "cannot read "+certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return pair, fault.E(op, fault.Invalid, "cannot read "+keyFile, err)
	}
	if !KeyEncrypted(keyPEM) && !IsTokenURI(keyPEM) {
		if pair, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
			return pair, fault.E(op, fault.Invalid, "cannot load "+certFile+" and "+keyFile, err)
		}
		return pair, nil
	}
	key, err := ParseKey(keyFile, keyPEM, pass)
	if err != nil {
		return pair, err
	}
	chain, err := ParsePEMCertificates(certPEM)
	if err != nil || len(chain) == 0 {
		return pair, fault.Errorf(op, fault.Invalid, "%s holds no certificate", certFile)
	}
	if !IsKeyOf(key, chain[0]) {
		return pair, fault.Errorf(op, fault.Invalid, "%s is not the key of the certificate in %s", keyFile, certFile)
	}
	for _, c := range chain {
		pair.Certificate = append(pair.Certificate, c.Raw)
	}
	pair.PrivateKey, pair.Leaf = key, chain[0]
	return pair, nil
}

// IsKeyOf says whether key is the private key of cert.
func IsKeyOf(key crypto.Signer, cert *x509.Certificate) bool {
	x, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && x.Equal(cert.PublicKey)
}
