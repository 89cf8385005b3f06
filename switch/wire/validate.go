package wire

import (
	"fmt"
	"unicode/utf8"
)

// Requests check their own fields when decoded (Decode calls Validate on
// any message that has it), so that no handler meets a negative count, an
// out-of-range size or an oversized string.

// MaxOverdueRows bounds QueuesRequest.Overdue.
const MaxOverdueRows = 1000

// MaxReason bounds an operator's reason, in bytes.
const MaxReason = 256

type validator interface{ Validate() error }

// Validate checks the overdue list's length.
func (r *QueuesRequest) Validate() error {
	if r.Overdue < 0 || r.Overdue > MaxOverdueRows {
		return fmt.Errorf("overdue rows %d: give 0 to %d", r.Overdue, MaxOverdueRows)
	}
	return nil
}

// Validate checks the page size and the index range.
func (q *AuditQuery) Validate() error {
	switch {
	case q.Limit < 0:
		return fmt.Errorf("limit %d: give a positive number, or none", q.Limit)
	case q.To > 0 && q.To < q.From:
		return fmt.Errorf("index range [%d, %d) is empty", q.From, q.To)
	case len(q.Event) > 64 || len(q.Agency) > 64:
		return fmt.Errorf("event or agency too long")
	case !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since):
		return fmt.Errorf("until %s is before since %s", q.Until, q.Since)
	}
	return nil
}

// Validate checks the sizes' order.
func (r *AuditConsistencyRequest) Validate() error {
	if r.Size1 > r.Size2 {
		return fmt.Errorf("consistency from size %d to the smaller size %d", r.Size1, r.Size2)
	}
	return nil
}

// Validate checks the action's fields.
func (o *Operate) Validate() error {
	switch {
	case len(o.Action) > 32:
		return fmt.Errorf("action too long")
	case len(o.Agency) > 64:
		return fmt.Errorf("agency too long")
	case len(o.Reason) > MaxReason || !utf8.ValidString(o.Reason):
		return fmt.Errorf("the reason must be valid UTF-8, at most %d bytes", MaxReason)
	}
	for _, r := range o.Reason {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("the reason must not hold control characters")
		}
	}
	return nil
}
