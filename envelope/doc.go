// Package envelope owns end-to-end sealing and signing of telegrams: the
// agencies' key pairs, their certification by the network's CA, the
// sealed and signed form a terminal files (the envelope), opening and
// verifying it at the addressee, and the evidence a third party checks
// offline.
//
// The switch carries an envelope as the telegram's body: opaque bytes it
// stores (sealed again with its own keys at rest) and forwards. It reads
// only the envelope's signed header, to check that it matches the filing
// it enforces (sender, addressees, precedence, classification, reference,
// delivery time, latest delivery time) and that every addressee agency
// has a wrapped key; it does no public-key work per telegram.
//
// The formats (CBOR, canonical encoding; each golden file in testdata):
//
//	AgencyKey (private, in the terminals' identity folders, agency-keys/SERIAL.key, mode 0600)
//	KeyCertificate = {1: body (KeyBody, CBOR bytes), 2: CA signature}
//	KeyBody        = {1: v, 2: agency, 3: serial, 4: KEM id, 5: encryption public key,
//	                  6: signature algorithm, 7: signing public key, 8: not before, 9: not after}
//	Revocation     = {1: body (RevocationBody, CBOR bytes), 2: CA signature}
//	Envelope       = "DBE2E1\n" then {1: header (SignedHeader, CBOR bytes), 2: Ed25519 signature,
//	                  3: [Wrap{1: agency, 2: key serial, 3: HPKE enc || ciphertext of the content key}],
//	                  4: AES-GCM nonce, 5: AES-256-GCM ciphertext of Content}
//	SignedHeader   = {1: v, 2: from, 3: to, 4: info, 5: precedence, 6: classification, 7: ref,
//	                  8: deliver at, 9: expires at, 10: signed at, 11: nonce, 12: sender key serial,
//	                  13: SHA-256 of Content, 14: signature algorithm}
//	Content        = {1: subject, 2: body}
//
// Signatures: the CA signs "dienbao agency key v1\x00" || KeyBody (and
// "dienbao key revocation v1\x00" || RevocationBody) with its own key
// (ECDSA P-256, SHA-256); a sender signs "dienbao telegram v1\x00" ||
// SignedHeader with Ed25519. The content key (32 random bytes) is sealed
// for each addressee agency with HPKE (RFC 9180: ML-KEM-768+X25519,
// HKDF-SHA256, AES-256-GCM), info "dienbao e2e key v1\x00" || agency ||
// SHA-256(SignedHeader); the content is sealed with AES-256-GCM under
// that key with SHA-256(SignedHeader) as additional data.
package envelope
