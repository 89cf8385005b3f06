package store

// AppendUnbounded appends e as the next audit entry without bounding it,
// as a switch did before entries were bounded (audit.Bounded): for the
// tests that such a log stays verifiable and exportable.
func (s *Store) AppendUnbounded(e AuditEntry) error {
	return s.submit(&op{apply: func(c *commitCtx) error { return c.appendEntry(e) }})
}
