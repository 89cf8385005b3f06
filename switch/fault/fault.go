// Package fault is dienbao's one error vocabulary. Every error that crosses a
// package boundary, the wire or the command line carries a Kind; the Kind is
// mapped once to a wire code (here), an exit status (cmd/tg) and an audit
// reason (store). Messages say what was wrong and what to do; they never carry
// a telegram body, subject or key material.
package fault

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies an error by what the caller can do about it.
type Kind uint8

// The kinds. Their numeric values are wire codes: append only.
const (
	Other       Kind = iota // unclassified; treated as Internal on the wire
	Invalid                 // malformed or unacceptable input; fix the request
	Permission              // the identity may not do this
	NotExist                // the thing named does not exist
	TooLarge                // a size limit was exceeded
	Unavailable             // transient: the switch is stopping or overloaded; retry
	Internal                // a bug or an I/O failure on the switch
	Integrity               // stored data failed an integrity check
	Minimized               // refused under an operator's MINIMIZE: file at a higher precedence, or after it is lifted
	Done                    // the action had already happened (a telegram cancelled twice): nothing changed
)

var kindNames = [...]string{"other", "invalid", "permission", "not_exist", "too_large", "unavailable", "internal", "integrity", "minimized", "done"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Error is an error with an operation, a kind and a message.
type Error struct {
	Op   string // the operation, e.g. "file", "store.open"
	Kind Kind
	Msg  string
	Err  error // the underlying cause, if any (not sent on the wire)
	// RetryAfter, on an Unavailable error: when to try again (the client
	// library does, backing off).
	RetryAfter time.Duration
}

// RetryAfter returns the wait err asks for before a retry, 0 if none.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) && e.Kind == Unavailable {
		return e.RetryAfter
	}
	return 0
}

// E builds an Error. Arguments may be a string op (first string), a Kind,
// an error (the cause) and a message via Msg/Msgf.
func E(op string, kind Kind, msg string, cause ...error) *Error {
	e := &Error{Op: op, Kind: kind, Msg: msg}
	if len(cause) > 0 {
		e.Err = cause[0]
	}
	return e
}

// Errorf builds an Error with a formatted message.
func Errorf(op string, kind Kind, format string, args ...any) *Error {
	return &Error{Op: op, Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	s := e.Msg
	if e.Op != "" {
		s = e.Op + ": " + s
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of the first *Error in err's chain, or Other.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Other
}

// Is reports whether err has the given kind.
func Is(kind Kind, err error) bool { return err != nil && KindOf(err) == kind }
