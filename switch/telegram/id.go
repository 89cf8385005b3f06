package telegram

import (
	"crypto/rand"
	"sync"
	"time"

	"github.com/dienbao/dienbao/switch/fault"
	"github.com/oklog/ulid/v2"
)

// ID is a switch-assigned telegram ID: a ULID (48-bit millisecond time,
// 80 bits of monotonic randomness), so IDs sort by filing time and never
// repeat. Printed as 26 Crockford base32 characters.
type ID [16]byte

// IDGen issues IDs that are strictly increasing within one process.
type IDGen struct {
	mu      sync.Mutex
	entropy *ulid.MonotonicEntropy
}

// NewIDGen returns a generator seeded from crypto/rand.
func NewIDGen() *IDGen { return &IDGen{entropy: ulid.Monotonic(rand.Reader, 0)} }

// New returns an ID for time t.
func (g *IDGen) New(t time.Time) ID {
	g.mu.Lock()
	defer g.mu.Unlock()
	u, err := ulid.New(ulid.Timestamp(t), g.entropy)
	if err != nil {
		// Monotonic entropy overflows only after 2^80 IDs in one millisecond.
		u = ulid.MustNew(ulid.Timestamp(t), rand.Reader)
	}
	return ID(u)
}

// ParseID parses the printed form of an ID.
func ParseID(s string) (ID, error) {
	u, err := ulid.ParseStrict(s)
	if err != nil {
		return ID{}, fault.Errorf("id", fault.Invalid, "%q is not a telegram ID (26 base32 characters)", s)
	}
	return ID(u), nil
}

func (id ID) String() string { return ulid.ULID(id).String() }

// Time is the millisecond time encoded in the ID.
func (id ID) Time() time.Time { return ulid.Time(ulid.ULID(id).Time()) }

// IsZero reports whether id is unset.
func (id ID) IsZero() bool { return id == ID{} }

// MarshalText writes the printed form.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText parses the printed form.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	*id = v
	return err
}
