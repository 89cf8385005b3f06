package server

import (
	"time"

	"github.com/dienbao/dienbao/switch/wire"
	"go.uber.org/zap"
)

// replaceWait bounds how long a new subscription waits for the sessions it
// replaces to give back what they held.
const replaceWait = 10 * time.Second

// replaceOlder ends the older sessions of the same terminal (the same
// certificate) subscribed to any part of what sub asks for (inbox or
// delivery reports), and waits until what they held in flight is back in
// the queues. A terminal that reconnects after its process died or its
// network went away thus gets those deliveries at once, flagged as
// possible duplicates, instead of after the idle or acknowledgement
// timeout of a session nobody reads any more. Other terminals of the
// agency (other certificates) are not touched, and one terminal may still
// follow its inbox and its delivery reports on two connections.
func (sess *session) replaceOlder(sub wire.Subscribe) {
	s := sess.s
	var older []*session
	s.mu.Lock()
	for o := range s.sessions {
		if o == sess || !o.cert.Equal(sess.cert) {
			continue
		}
		o.mu.Lock()
		overlaps := o.subscribed && (o.sub.Inbox && sub.Inbox || o.sub.Receipts && sub.Receipts)
		o.mu.Unlock()
		if overlaps {
			older = append(older, o)
		}
	}
	s.mu.Unlock()
	for _, o := range older {
		sess.log.Info("replacing an older session of this terminal", zap.String("older", o.remote))
		o.conn.CloseWithError(codeReplaced, "replaced by a newer session of this terminal")
		select {
		case <-o.closed:
		case <-time.After(replaceWait):
			sess.log.Warn("an older session of this terminal did not end in time", zap.String("older", o.remote))
		}
	}
}
