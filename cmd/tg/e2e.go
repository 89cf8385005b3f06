package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/envelope"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// End-to-end sealing: an agency's keys (on its terminals), their
// certification (at the CA), and the offline checks (tg verify, tg
// export-proof).

type agencyKeysCmd struct {
	New    agencyKeysNewCmd    `cmd:"" help:"Make a new key pair for this identity's agency in the identity folder, and a request for the CA to certify."`
	List   agencyKeysListCmd   `cmd:"" help:"This identity's agency keys, and which the switch publishes."`
	Import agencyKeysImportCmd `cmd:"" help:"Copy an agency key file (from another terminal of the agency) into this identity folder."`
}

type agencyKeysNewCmd struct {
	Days int    `default:"730" help:"Validity asked for, in days."`
	Out  string `type:"path" help:"Write the request here (default: agency-keys/SERIAL.request.pem in the identity folder)."`
}

func (c *agencyKeysNewCmd) Run(e *env) error {
	f, err := e.folder()
	if err != nil {
		return err
	}
	if f.Identity.Role != certs.Terminal {
		return fault.E("agency-keys", fault.Invalid, "agency keys belong in a terminal's identity folder")
	}
	k, err := envelope.NewAgencyKey(f.Identity.Agency)
	if err != nil {
		return err
	}
	if err := k.Save(e.id); err != nil {
		return err
	}
	req, err := envelope.Request(k.Public(time.Duration(c.Days) * 24 * time.Hour))
	if err != nil {
		return err
	}
	out := c.Out
	if out == "" {
		out = filepath.Join(e.id, "agency-keys", k.Serial+".request.pem")
	}
	if err := os.WriteFile(out, req, 0o644); err != nil {
		return err
	}
	if e.json {
		return e.emit(map[string]string{"agency": string(k.Agency), "serial": k.Serial, "request": out})
	}
	_, err = fmt.Fprintf(e.stdout, "agency key %s made for %s (private: %s, mode 0600; copy it only to this agency's other terminals)\n"+
		"request for the CA: %s (tg certs sign-keys --ca CA %s --out %s.pem, then publish that file in the directory's keys folder)\n",
		k.Serial, k.Agency, filepath.Join(e.id, "agency-keys", k.Serial+".key"), out, out, k.Agency)
	return err
}

type agencyKeysListCmd struct{}

// agencyKeyRow is one key tg agency-keys list prints.
type agencyKeyRow struct {
	Serial    string    `json:"serial"`
	Agency    string    `json:"agency"`
	Created   time.Time `json:"created"`
	Published bool      `json:"published"`
	Revoked   bool      `json:"revoked"`
	Current   bool      `json:"current"` // what senders seal to now
	NotAfter  time.Time `json:"not_after,omitzero"`
}

func (c *agencyKeysListCmd) Run(e *env) error {
	f, err := e.folder()
	if err != nil {
		return err
	}
	mine, err := envelope.LoadKeys(e.id)
	if err != nil {
		return err
	}
	cl, err := e.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	got, err := cl.AgencyKeys(e.ctx, []telegram.Address{f.Identity.Agency})
	if err != nil {
		return err
	}
	dir, _ := envelope.NewDirectory(envelope.Published{Certs: got.Certs, Revocations: got.Revocations}, f.CACerts)
	cur, _ := dir.Current(f.Identity.Agency, time.Now())
	for _, k := range mine {
		row := agencyKeyRow{Serial: k.Serial, Agency: string(k.Agency), Created: k.Created}
		if cert, ok := dir.Cert(k.Serial); ok {
			_, row.Revoked = dir.Revoked()[k.Serial]
			row.Published, row.NotAfter = true, cert.NotAfter
			row.Current = cur != nil && cur.Serial == k.Serial
		}
		if e.json {
			if err := e.emit(row); err != nil {
				return err
			}
			continue
		}
		state := "not published (the CA has not certified it, or it is not in the directory's keys folder yet)"
		switch {
		case row.Revoked:
			state = "REVOKED: kept only to open telegrams sealed to it before"
		case row.Current:
			state = "published, current: senders seal to it"
		case row.Published:
			state = "published, older: kept to open telegrams sealed to it"
		}
		fmt.Fprintf(e.stdout, "%s  %s  made %s  %s\n", k.Serial, k.Agency, k.Created.Format(time.RFC3339), state)
	}
	if len(mine) == 0 && !e.json {
		fmt.Fprintln(e.stdout, "no agency keys in this identity folder: tg agency-keys new makes one")
	}
	return nil
}

type agencyKeysImportCmd struct {
	File string `arg:"" type:"existingfile" help:"An agency key file (SERIAL.key) of this identity's agency."`
}

func (c *agencyKeysImportCmd) Run(e *env) error {
	f, err := e.folder()
	if err != nil {
		return err
	}
	if err := certs.CheckPrivate(c.File); err != nil {
		return fault.E("agency-keys", fault.Invalid, err.Error())
	}
	k, err := envelope.ReadKeyFile(c.File)
	if err != nil {
		return fault.E("agency-keys", fault.Invalid, err.Error())
	}
	if k.Agency != f.Identity.Agency {
		return fault.Errorf("agency-keys", fault.Invalid, "the key is %s's, this identity is %s's", k.Agency, f.Identity.Agency)
	}
	if err := k.Save(e.id); err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "agency key %s of %s imported\n", k.Serial, k.Agency)
	return err
}

type certsSignKeysCmd struct {
	CA      string   `required:"" type:"path" help:"CA folder (ca.pem, ca.key)."`
	Request []string `arg:"" type:"existingfile" help:"Agency key requests (tg agency-keys new made them)."`
	Days    int      `help:"Validity in days (default: as requested)."`
	Out     string   `required:"" type:"path" help:"Write the key certificates here (PEM): put the file in the directory's keys folder (the switch notices it within a second)."`
}

func (c *certsSignKeysCmd) Run(e *env) error {
	ca, err := certs.LoadCA(c.CA)
	if err != nil {
		return err
	}
	var out []byte
	var serials []string
	for _, r := range c.Request {
		data, err := os.ReadFile(r)
		if err != nil {
			return err
		}
		var p envelope.Published
		reqs, err := p.ParsePEM(data)
		if err != nil || len(reqs) == 0 {
			return fault.Errorf("certs", fault.Invalid, "%s holds no agency key request (%v)", r, err)
		}
		for _, kb := range reqs {
			if c.Days > 0 {
				kb.NotAfter = time.Now().UTC().Truncate(time.Second).Add(time.Duration(c.Days) * 24 * time.Hour)
			}
			cert, err := envelope.Certify(ca.Key, kb)
			if err != nil {
				return fault.E("certs", fault.Invalid, r+": "+err.Error())
			}
			out = append(out, envelope.EncodePEM("cert", cert)...)
			serials = append(serials, string(kb.Agency)+"/"+kb.Serial)
		}
	}
	if err := os.WriteFile(c.Out, out, 0o644); err != nil {
		return err
	}
	if e.json {
		return e.emit(map[string]any{"out": c.Out, "keys": serials})
	}
	_, err = fmt.Fprintf(e.stdout, "certified %s into %s: publish it in the directory's keys folder (the switch notices it within a second)\n", strings.Join(serials, ", "), c.Out)
	return err
}

type certsRevokeKeysCmd struct {
	CA     string `required:"" type:"path" help:"CA folder (ca.pem, ca.key)."`
	Agency string `required:"" help:"The agency whose key is revoked."`
	Serial string `required:"" help:"The key's serial (tg agency-keys list)."`
	Reason string `default:"compromised" help:"Why, for those who check."`
	At     string `help:"Revoked from this RFC 3339 time (default: now): signatures on telegrams filed from then on are refused."`
	Out    string `required:"" type:"path" help:"Write the revocation here (PEM): put it in the directory's keys folder (the switch notices it within a second)."`
}

func (c *certsRevokeKeysCmd) Run(e *env) error {
	ca, err := certs.LoadCA(c.CA)
	if err != nil {
		return err
	}
	a, err := telegram.ParseAddress(c.Agency)
	if err != nil {
		return err
	}
	at := time.Now().UTC()
	if c.At != "" {
		if at, err = time.Parse(time.RFC3339, c.At); err != nil {
			return fault.E("certs", fault.Invalid, "--at: give an RFC 3339 time", err)
		}
	}
	raw, err := envelope.Revoke(ca.Key, envelope.RevocationBody{Agency: a, Serial: c.Serial, RevokedAt: at, Reason: c.Reason})
	if err != nil {
		return fault.E("certs", fault.Invalid, err.Error())
	}
	if err := os.WriteFile(c.Out, envelope.EncodePEM("revocation", raw), 0o644); err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "revoked %s's key %s from %s into %s: publish it in the directory's keys folder (the switch notices it within a second)\n",
		a, c.Serial, at.Format(time.RFC3339), c.Out)
	return err
}

type verifyCmd struct {
	File string `arg:"" type:"existingfile" help:"A proof (tg export-proof), or stored telegrams (tg inbox --stored --json: each line is checked)."`
	Key  string `help:"The switch's audit verifier key, as published: the proof's must match it."`
}

// verifyResult is what tg verify prints with --json.
type verifyResult struct {
	ID          telegram.ID      `json:"id"`
	From        telegram.Address `json:"from"`
	SignedBy    string           `json:"signed_by"` // the sender's key serial
	Addressee   telegram.Address `json:"addressee,omitempty"`
	Signature   string           `json:"signature"` // "valid"
	Filed       *time.Time       `json:"filed,omitempty"`
	Delivered   *time.Time       `json:"delivered,omitempty"`
	LogOrigin   string           `json:"log_origin,omitempty"`
	LogSize     uint64           `json:"log_size,omitempty"`
	VerifierKey string           `json:"verifier_key,omitempty"`
}

func (c *verifyCmd) Run(e *env) error {
	data, err := os.ReadFile(c.File)
	if err != nil {
		return err
	}
	// A proof is one JSON document; stored telegrams are JSON Lines (tg
	// inbox --stored --json), each checked.
	var p envelope.Proof
	if json.Unmarshal(data, &p) == nil && p.V == envelope.ProofVersion {
		return c.verify(e, p, nil)
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		p, body, err := storedProof(e, line)
		if err != nil {
			return err
		}
		if err := c.verify(e, p, body); err != nil {
			return err
		}
	}
	return nil
}

// verify checks one proof and prints what it proves; body, for a stored
// telegram, must be the one the sender signed.
func (c *verifyCmd) verify(e *env, p envelope.Proof, body []byte) error {
	ch, err := p.Check(c.Key)
	if err == nil && body != nil && !bytes.Equal(body, ch.Opened.Body) {
		err = errors.New("the stored body is not the one the sender signed")
	}
	if err != nil {
		return fault.E("verify", fault.Integrity, "telegram "+p.Header.ID.String()+" does not verify", err)
	}
	r := verifyResult{ID: p.Header.ID, From: p.Header.From, SignedBy: ch.Opened.Signed.Key, Addressee: p.Addressee, Signature: "valid"}
	if ch.Filed != nil {
		r.Filed, r.Delivered = &ch.Filed.At, &ch.Delivered.At
		r.LogOrigin, r.LogSize, r.VerifierKey = ch.Checkpoint.Origin, ch.Checkpoint.Size, ch.VerifierKey
	}
	if e.json {
		return e.emit(r)
	}
	fmt.Fprintf(e.stdout, "telegram %s: signed by %s (key %s, certified by %s); header and content are what was signed\n",
		r.ID, r.From, r.SignedBy, certsName(p.CA))
	if ch.Filed == nil {
		_, err = fmt.Fprintln(e.stdout, "no audit proof in this file: tg export-proof adds the switch's proof of filing and delivery")
		return err
	}
	fmt.Fprintf(e.stdout, "filed %s and delivered to %s %s, in the log %s of %d entries, signed by key %s\n",
		r.Filed.Format(time.RFC3339), r.Addressee, r.Delivered.Format(time.RFC3339), r.LogOrigin, r.LogSize, r.VerifierKey)
	if c.Key == "" {
		fmt.Fprintln(e.stdout, "compare that key with the switch's published verifier key (or pass it with --key)")
	}
	return nil
}

// storedProof makes a stored telegram into a proof, with the identity
// folder's CA; it returns the stored body too.
func storedProof(e *env, data []byte) (envelope.Proof, []byte, error) {
	var p envelope.Proof
	var m client.Message
	if err := json.Unmarshal(data, &m); err != nil || m.ID.IsZero() {
		return p, nil, fault.E("verify", fault.Invalid, "the file is neither a proof (tg export-proof) nor a stored telegram (tg inbox --stored --json)")
	}
	if m.Signed == nil {
		return p, nil, fault.Errorf("verify", fault.Invalid, "telegram %s was filed unsealed: it carries no signature to check", m.ID)
	}
	f, err := e.folder()
	if err != nil {
		return p, nil, err
	}
	return envelope.Proof{V: envelope.ProofVersion, Header: m.Header(), Evidence: *m.Signed, CA: string(f.CAPEM)}, m.Body, nil
}

func certsName(caPEM string) string {
	cas, err := certs.ParsePEMCertificates([]byte(caPEM))
	if err != nil || len(cas) == 0 {
		return "?"
	}
	return cas[0].Subject.CommonName
}

type exportProofCmd struct {
	ID  string `arg:"" help:"Telegram ID (in this terminal's inbox)."`
	Out string `type:"path" help:"Write the proof here (default: standard output)."`
	Dir string `name:"inbox" type:"path" help:"The inbox folder (default: inbox/ inside the identity folder)."`
}

func (c *exportProofCmd) Run(e *env) error {
	id, err := telegram.ParseID(c.ID)
	if err != nil {
		return err
	}
	in, err := e.inbox(c.Dir)
	if err != nil {
		return err
	}
	m, err := in.Message(id)
	if err != nil {
		return err
	}
	if m.Signed == nil {
		return fault.Errorf("export-proof", fault.Invalid, "telegram %s was filed unsealed: there is no signature to prove", id)
	}
	f, err := e.folder()
	if err != nil {
		return err
	}
	cl, err := e.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	b, err := cl.AuditProof(e.ctx, id)
	if err != nil {
		return err
	}
	keys, err := cl.AgencyKeys(e.ctx, []telegram.Address{m.From})
	if err != nil {
		return err
	}
	p := envelope.Proof{V: envelope.ProofVersion, Addressee: f.Identity.Agency, Header: m.Header(), Evidence: *m.Signed,
		CA: string(f.CAPEM), Revocations: keys.Revocations, Audit: &b}
	if _, err := p.Check(""); err != nil {
		return fault.E("export-proof", fault.Integrity, "the proof does not verify", err)
	}
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if c.Out == "" {
		_, err = e.stdout.Write(data)
		return err
	}
	if err := os.WriteFile(c.Out, data, 0o644); err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stderr, "proof of %s written to %s: tg verify %s checks it, with no access to the switch\n", id, c.Out, c.Out)
	return err
}
