package client

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/dienbao/dienbao/envelope"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/filing"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

// End-to-end sealing (package envelope). A terminal whose identity folder
// holds its agency's keys (agency-keys/) seals and signs every telegram it
// files, unless Telegram.Plain says not to, and verifies and opens every
// sealed telegram it receives before its handler sees it; one that fails
// is refused back to the switch (the sender is told NOT_DELIVERED, reason
// signature or unreadable), never handed to the handler.

// keysTTL is how long published keys fetched from the switch are used
// before they are asked for again (a rotation or a revocation reaches a
// terminal within it).
const keysTTL = time.Minute

// e2e is a client's end-to-end state: its agency's keys, the CA, and the
// published keys fetched so far.
type e2e struct {
	once sync.Once
	err  error
	mine []*envelope.AgencyKey // newest first

	mu      sync.Mutex
	fetched map[telegram.Address]time.Time
	pub     envelope.Published
	dir     *envelope.Directory
}

func (c *Client) e2eState() (*e2e, error) {
	c.e2e.once.Do(func() {
		c.e2e.mine, c.e2e.err = envelope.LoadKeys(c.folder.Dir)
		if c.e2e.err != nil {
			c.e2e.err = fault.E("e2e", fault.Invalid, "cannot load the agency keys in "+filepath.Join(c.folder.Dir, "agency-keys"), c.e2e.err)
			return
		}
		for _, k := range c.e2e.mine {
			if k.Agency != c.folder.Identity.Agency {
				c.e2e.err = fault.Errorf("e2e", fault.Invalid, "agency key %s in %s is %s's, not this identity's agency %s",
					k.Serial, c.folder.Dir, k.Agency, c.folder.Identity.Agency)
				return
			}
		}
		c.e2e.fetched = map[telegram.Address]time.Time{}
	})
	return &c.e2e, c.e2e.err
}

// Seals reports whether this terminal seals what it files: its folder
// holds its agency's keys.
func (c *Client) Seals() bool {
	e, err := c.e2eState()
	return err == nil && len(e.mine) > 0
}

// AgencyKeys asks the switch for the published keys of agencies.
func (c *Client) AgencyKeys(ctx context.Context, agencies []telegram.Address) (wire.AgencyKeys, error) {
	var out wire.AgencyKeys
	err := c.request(ctx, wire.TAgencyKeys, wire.AgencyKeysRequest{Agencies: agencies}, wire.TAgencyKeyed, &out)
	return out, err
}

// keysFor returns the published keys, checked under the folder's CA,
// with those of agencies fresh (fetched within keysTTL).
func (c *Client) keysFor(ctx context.Context, e *e2e, agencies []telegram.Address) (*envelope.Directory, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	var need []telegram.Address
	for _, a := range agencies {
		if t, ok := e.fetched[a]; (!ok || now.Sub(t) > keysTTL) && !slices.Contains(need, a) {
			need = append(need, a)
		}
	}
	if len(need) == 0 && e.dir != nil {
		return e.dir, nil
	}
	for len(need) > 0 {
		n := min(len(need), wire.MaxKeyAgencies)
		got, err := c.AgencyKeys(ctx, need[:n])
		if err != nil {
			return nil, err
		}
		for _, a := range need[:n] {
			if !slices.Contains(got.Missing, a) { // one without a key yet is asked for again next time
				e.fetched[a] = now
			}
		}
		e.pub.Revocations = got.Revocations
		for _, raw := range got.Certs {
			if !slices.ContainsFunc(e.pub.Certs, func(b []byte) bool { return string(b) == string(raw) }) {
				e.pub.Certs = append(e.pub.Certs, raw)
			}
		}
		need = need[n:]
	}
	// What does not verify under this terminal's own CA is left out: the
	// switch is not trusted to vouch for a key.
	e.dir, _ = envelope.NewDirectory(e.pub, c.folder.CACerts)
	return e.dir, nil
}

// seal turns the telegrams that are to be sealed into envelopes.
func (c *Client) seal(ctx context.Context, ts []Telegram) ([]Telegram, error) {
	e, err := c.e2eState()
	if err != nil {
		return nil, err
	}
	if len(e.mine) == 0 {
		return ts, nil
	}
	agencies := []telegram.Address{c.folder.Identity.Agency}
	for _, t := range ts {
		if !t.Plain {
			agencies = append(agencies, t.To...)
			agencies = append(agencies, t.Info...)
		}
	}
	if len(agencies) == 1 {
		return ts, nil
	}
	dir, err := c.keysFor(ctx, e, agencies)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]Telegram, len(ts))
	for i, t := range ts {
		out[i] = t
		if t.Plain {
			continue
		}
		// What the switch cannot check inside an envelope is checked here.
		if err := filing.CheckSubject(t.Subject, filing.Limits{}); err != nil {
			return nil, err
		}
		if len(t.Body) == 0 {
			return nil, filing.CheckSize(0, filing.Limits{})
		}
		self, err := dir.Current(c.folder.Identity.Agency, now)
		if err != nil {
			return nil, fault.E("send", fault.Invalid, "this terminal's agency "+err.Error()+": addressees could not check its signature; nothing was filed (the CA certifies the key: tg certs sign-keys)")
		}
		to := map[telegram.Address]*envelope.Cert{c.folder.Identity.Agency: self}
		keyless := false
		for _, a := range append(slices.Clip(t.To), t.Info...) {
			if to[a], err = dir.Current(a, now); err != nil {
				keyless = true
			}
		}
		if keyless {
			// Filed unsealed: the switch refuses it with the reason (an
			// address it does not know, or a classification its policy
			// wants sealed for an addressee with no key), or takes it where
			// the site allows plain telegrams; Filed.Sealed says which.
			continue
		}
		p := envelope.Plain{Fields: envelope.Fields{From: c.folder.Identity.Agency, To: t.To, Info: t.Info, Precedence: orDefault(t.Precedence, telegram.Routine),
			Classification: orDefault(t.Classification, telegram.Unclassified), Ref: t.Ref, DeliverAt: t.DeliverAt, ExpiresAt: t.ExpiresAt},
			Content: envelope.Content{Subject: t.Subject, Body: t.Body}}
		// Signed with the agency's current published key: a key made but
		// not yet certified and published would fail at every addressee.
		signer := e.key(self.Serial)
		if signer == nil {
			return nil, fault.Errorf("send", fault.Invalid, "this identity folder does not hold %s's current published key %s: nothing was filed (tg agency-keys import it from another terminal of the agency)",
				c.folder.Identity.Agency, self.Serial)
		}
		env, _, err := envelope.Seal(p, signer, to)
		if err != nil {
			return nil, fault.E("send", fault.Invalid, "cannot seal the telegram", err)
		}
		out[i].Subject, out[i].Body, out[i].sealed = "", env, true
	}
	return out, nil
}

func orDefault[T comparable](v, d T) T {
	var zero T
	if v == zero {
		return d
	}
	return v
}

// open verifies and opens a sealed delivery. A plain delivery passes
// unless its classification must be sealed (SECRET and up): a terminal
// does not trust the switch to have checked. The error is an
// *envelope.Refusal when the telegram is to be refused.
func (c *Client) open(ctx context.Context, d *Delivery) error {
	sealed := d.Header.Sealed || envelope.Is(d.Body)
	if !sealed {
		if d.Header.Classification >= telegram.Secret {
			return &envelope.Refusal{Reason: envelope.ReasonSignature, Detail: "a " + d.Header.Classification.String() + " telegram arrived neither sealed nor signed"}
		}
		return nil
	}
	e, err := c.e2eState()
	if err != nil {
		return err
	}
	if len(e.mine) == 0 {
		return fault.Errorf("receive", fault.Invalid, "telegram %s is sealed end to end and this identity folder holds none of %s's agency keys (%s): "+
			"it is left with the switch for a terminal that has them", d.Header.ID, c.folder.Identity.Agency, filepath.Join(c.folder.Dir, "agency-keys"))
	}
	dir, err := c.keysFor(ctx, e, []telegram.Address{d.Header.From})
	if err != nil {
		return err
	}
	o, err := envelope.Open(d.Body, d.Header, c.folder.Identity.Agency, e.mine, dir)
	if err != nil {
		return err
	}
	d.Header.Subject, d.Body, d.Opened = o.Subject, o.Body, o
	return nil
}

// key is this terminal's agency key with serial, or nil.
func (e *e2e) key(serial string) *envelope.AgencyKey {
	for _, k := range e.mine {
		if k.Serial == serial {
			return k
		}
	}
	return nil
}
