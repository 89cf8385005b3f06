// Package certs is dienbao's PKI: it creates the network's CA, issues
// certificates for terminals, operators, auditors and switches, and reads an
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
// Private keys are written PKCS#8 PEM with mode 0600. Protecting key files
// with a passphrase is part of the key-management work (issue 4).
package certs
