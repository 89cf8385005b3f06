package server

import (
	"fmt"
	"slices"
	"strings"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/switch/failpoint"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/quic-go/quic-go"
)

// route is one request type: the roles that may send it at all, the finer
// condition its handler enforces (stated here, for the table in the
// README), and the handler. Every request goes through routes: a role not
// listed is refused before the payload is decoded, with a clear error and
// a security entry in the audit log; the handler then applies the
// condition the same way.
type route struct {
	what      string // what the request does, for messages and the table
	roles     []certs.Role
	condition string
	handle    func(sess *session, str *quic.Stream, payload []byte, release func())
}

var (
	terminals = []certs.Role{certs.Terminal}
	operators = []certs.Role{certs.Operator}
	auditors  = []certs.Role{certs.Auditor}
	people    = []certs.Role{certs.Terminal, certs.Operator, certs.Auditor}
	switches  = []certs.Role{certs.Switch}
)

func plain(h func(sess *session, str *quic.Stream, payload []byte)) func(*session, *quic.Stream, []byte, func()) {
	return func(sess *session, str *quic.Stream, payload []byte, _ func()) { h(sess, str, payload) }
}

// routes is the authorization table.
var routes = map[wire.Type]route{
	wire.TFile: {"file telegrams", terminals,
		"the sender is the certificate's agency; the classification at most the certificate's clearance; addressees in the directory", plain((*session).handleFile)},
	wire.TSubscribe: {"receive telegrams and delivery reports", terminals,
		"only the certificate's own agency's queues; a telegram only to a terminal cleared to its classification", (*session).handleSubscribe},
	wire.TAuditQuery: {"read the audit log", people,
		"auditor: every entry; terminal: entries naming its agency, and every entry of a telegram its agency sent or was sent; operator: telegram entries without from, to, precedence or classification", plain((*session).handleAuditQuery)},
	wire.TAuditProof: {"obtain audit proofs", []certs.Role{certs.Terminal, certs.Auditor},
		"terminal: telegrams its agency sent or was sent", plain((*session).handleAuditProof)},
	wire.TAuditExport: {"export the audit log", auditors, "", plain((*session).handleAuditExport)},
	wire.TAuditArchive: {"archive the audit log", auditors,
		"entries older than the age given (or configured) and covered by a signed checkpoint; each file audited", plain((*session).handleAuditArchive)},
	wire.TAuditCheckpoint:  {"read audit checkpoints", people, "the list of every checkpoint, and a new one on request: auditors only (others get the latest)", plain((*session).handleAuditCheckpoint)},
	wire.TAuditConsistency: {"read audit consistency proofs", people, "", plain((*session).handleAuditConsistency)},
	wire.TQueues:           {"read the queues", operators, "the agencies in the operator's scope", plain((*session).handleQueues)},
	wire.TSessions:         {"list sessions", operators, "a scoped operator: terminals of agencies in scope", plain((*session).handleSessions)},
	wire.TList: {"list telegrams in custody", operators,
		"header fields only, never the subject or the body; telegrams up to the operator's clearance (others counted as withheld); agencies in the operator's scope", plain((*session).handleList)},
	wire.TMoveQueue: {"move an agency's queue to another address", operators,
		"audited per telegram; telegrams up to the operator's clearance; the new address in the directory and taking telegrams; both in the operator's scope", plain((*session).handleMoveQueue)},
	wire.TNotice: {"post, close or list incident notices", operators,
		"audited; a scoped operator: notices for prefixes in its scope, sees those that touch it", plain((*session).handleNotice)},
	wire.TShow:       {"show telegrams", operators, "never the subject or the body; telegrams up to the operator's clearance, every addressee in its scope", plain((*session).handleShow)},
	wire.TOperate:    {"hold, release, cancel or requeue telegrams", operators, "telegrams up to the operator's clearance, every addressee in its scope (an agency: in scope)", plain((*session).handleOperate)},
	wire.TRotateKeys: {"rotate keys", operators, "operators of the whole network (no scope)", plain((*session).handleRotate)},
	wire.TClock:      {"read or confirm the switch's clock", operators, "confirm: operators of the whole network (no scope)", plain((*session).handleClock)},
	wire.TMinimize: {"declare, lift or list MINIMIZE", []certs.Role{certs.Terminal, certs.Operator},
		"operator: declares and lifts, sees every declaration; terminal: lists those covering its agency", plain((*session).handleMinimize)},
	wire.TRetrieve: {"retrieve telegrams from the journal", []certs.Role{certs.Terminal, certs.Auditor},
		"a copy, never a delivery; terminal: telegrams its agency sent, or was sent once delivered to it; auditor: any; each up to the certificate's clearance", plain((*session).handleRetrieve)},
	wire.TResend: {"send telegrams again", []certs.Role{certs.Terminal, certs.Operator},
		"terminal: telegrams its agency sent; operator: any; each up to the certificate's clearance; only to addressees it was delivered to, flagged possible duplicate", plain((*session).handleResend)},
	wire.TLinkOpen: {"open a link", switches, "a peer switch named in the [network] config, by its certificate's name", plain((*session).handleLinkOpen)},
	wire.TRelay: {"hand over telegrams and delivery reports", switches,
		"a peer switch named in the [network] config; each copy is taken only if this switch serves its addressee (in its directory) or has a route for it, and it does not loop", plain((*session).handleRelay)},
	wire.TCosign: {"ask for a cosignature of an audit checkpoint (witness)", switches,
		"a peer switch named in the [network] config; only a checkpoint consistent with the last one cosigned for that log", plain((*session).handleCosign)},
	wire.TLinks:       {"list the links to peer switches", operators, "a scoped operator: links in its scope", plain((*session).handleLinks)},
	wire.TLinkOperate: {"hold or release a link", operators, "audited; a scoped operator: links in its scope", plain((*session).handleLinkOperate)},
	wire.TGroup: {"read or change a replicated switch's group", people,
		"terminals and auditors: the leader and the members' addresses; operators: Raft's figures too, and add or remove a member (audited)", plain((*session).handleGroup)},
	wire.TAgencyKeys: {"read agencies' published end-to-end keys", people,
		"key certificates and revocations as the CA signed them; the terminal checks them itself", plain((*session).handleAgencyKeys)},
	wire.TJournal: {"list telegrams by agency and date", people,
		"header fields only, never the subject or the body; terminal: its own agency's; operator: up to its clearance (others counted as withheld)", plain((*session).handleJournal)},
}

// dispatch runs a request through the table.
func (sess *session) dispatch(t wire.Type, str *quic.Stream, payload []byte, release func()) {
	r, ok := routes[t]
	if !ok {
		sess.replyError(str, fault.Errorf("switch", fault.Invalid, "unknown request type %s", t))
		str.CancelRead(streamProtocol)
		return
	}
	if !slices.Contains(r.roles, sess.id.Role) {
		sess.deny(str, fault.Errorf(t.String(), fault.Permission, "%s certificates cannot %s; only %s can", sess.id.Role, r.what, roleList(r.roles)))
		return
	}
	if err := scopeNetworkWide(sess.id, t); err != nil {
		sess.deny(str, err)
		return
	}
	failpoint.Panic("handler")
	r.handle(sess, str, payload, release)
}

func roleList(rs []certs.Role) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r) + "s"
	}
	if len(s) > 1 {
		return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
	}
	return s[0]
}

// AuthorizationTable renders the table as the README shows it.
func AuthorizationTable() string {
	types := make([]wire.Type, 0, len(routes))
	for t := range routes {
		types = append(types, t)
	}
	slices.Sort(types)
	var b strings.Builder
	b.WriteString("| request | terminal | operator | auditor | switch | condition |\n|---|---|---|---|---|---|\n")
	for _, t := range types {
		r := routes[t]
		fmt.Fprintf(&b, "| `%s` (%s) |", t, r.what)
		for _, role := range []certs.Role{certs.Terminal, certs.Operator, certs.Auditor, certs.Switch} {
			mark := " – |"
			if slices.Contains(r.roles, role) {
				mark = " yes |"
			}
			b.WriteString(mark)
		}
		fmt.Fprintf(&b, " %s |\n", r.condition)
	}
	return b.String()
}
