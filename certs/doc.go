// Package certs is dienbao's PKI: it creates the network's CA (an offline
// root and the issuing intermediate it signs: ca.go), issues certificates
// for terminals, operators, auditors and switches, directly or from a
// certificate request whose key stays with its holder (request.go), signs
// revocation lists (crl.go), reads and writes private keys plain, under a
// passphrase or in a PKCS#11 token (keyfile.go, token.go), and reads an
// identity back out of a verified certificate.
//
// Where the identity lives. A dienbao certificate carries its identity in
// URI subject alternative names in the urn:dienbao: namespace, one of each:
//
//	urn:dienbao:role:terminal            terminal | operator | auditor | switch
//	urn:dienbao:agency:NA.VINH.UBND      the agency address (terminals, switches)
//	urn:dienbao:clearance:SECRET         UNCLASSIFIED | CONFIDENTIAL | SECRET | TOPSECRET
//
// The subject repeats them for people reading the certificate with openssl
// (CN = the holder's name, O = the agency, OU = the role), but only the SANs
// are trusted. Certificates are X.509 v3 with ECDSA P-256 keys, signed by the
// CA with ECDSA-SHA256, so `openssl verify -CAfile ca.pem cert.pem` accepts
// them. Client identities get the clientAuth extended key usage, switches
// serverAuth and clientAuth (a switch is a client of its peers).
//
// Private keys are written PKCS#8 PEM with mode 0600, encrypted under a
// passphrase on request (PBES2: PBKDF2-HMAC-SHA256 and AES-256-CBC); or
// they stay in a PKCS#11 token, and the key file holds the token's URI.
package certs
