package server

import (
	"fmt"
	"strings"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

// Operators' scope. An operator certificate may be limited to address
// prefixes (certs.Identity.Scope: urn:dienbao:scope:NA+HN): two
// organisations run one network, the central bureau the backbone and the
// first level, the telecom operator each province's second level. A
// scoped operator sees only the agencies in scope (tg queues, tg list,
// tg sessions, the console), may show and act on a telegram only when
// every addressee is in scope, and may not take network-wide actions
// (rotate keys, confirm the clock, change the group, declare a MINIMIZE
// beyond its agencies; archiving the audit log is auditors' anyway). Its scope may also name links to peer switches
// (link:TW): it sees those links and holds or releases them, no others.
// Refusals are audited (deny).

// networkWide are the requests a scoped operator may not make at all.
var networkWide = map[wire.Type]string{
	wire.TRotateKeys: "rotating the switch's keys",
}

func scopeList(id certs.Identity) string {
	var parts []string
	for _, p := range id.Scope {
		parts = append(parts, string(p))
	}
	for _, l := range id.Links {
		parts = append(parts, "link:"+l)
	}
	return strings.Join(parts, ", ")
}

// outOfScope is the refusal of what touches agencies outside id's scope.
func outOfScope(id certs.Identity, what string, out []telegram.Address) error {
	names := make([]string, len(out))
	for i, a := range out {
		names[i] = string(a)
	}
	return fault.Errorf("operator", fault.Permission, "%s: %s outside this operator's scope (%s)", what, strings.Join(names, ", "), scopeList(id))
}

// scopeNetworkWide refuses a network-wide request of a scoped operator.
func scopeNetworkWide(id certs.Identity, t wire.Type) error {
	if what, ok := networkWide[t]; ok && id.Scoped() {
		return fault.Errorf(t.String(), fault.Permission, "%s acts on the whole network; this operator's certificate is limited to %s", what, scopeList(id))
	}
	return nil
}

// scopeTelegram refuses an action on a telegram with an addressee (or,
// for reading, a sender and every addressee) outside id's scope.
func scopeTelegram(id certs.Identity, h telegram.Header, what string) error {
	if !id.Scoped() {
		return nil
	}
	var out []telegram.Address
	for _, a := range h.Addressees() {
		if !id.InScope(a) {
			out = append(out, a)
		}
	}
	if len(out) > 0 {
		return outOfScope(id, fmt.Sprintf("%s telegram %s", what, h.ID), out)
	}
	return nil
}

// scopeAgencies refuses agencies outside id's scope.
func scopeAgencies(id certs.Identity, what string, as ...telegram.Address) error {
	var out []telegram.Address
	for _, a := range as {
		if !id.InScope(a) {
			out = append(out, a)
		}
	}
	if len(out) > 0 {
		return outOfScope(id, what, out)
	}
	return nil
}
